// JPEG and PNG decoding into 8-bit RGB, and JPEG and PNG encoding, through the system libjpeg(-turbo) and libpng.
#ifndef SSF_CODECS_H
#define SSF_CODECS_H
#include <stddef.h>
#include <stdint.h>

/// Decodes a JPEG (grayscale, RGB/YCbCr or CMYK/YCCK) held in memory to interleaved RGB.
/// On success returns 0 and sets *width, *height and *pixels (malloc'd, width*height*3 bytes;
/// release with ssf_free_pixels). On failure returns nonzero and writes a message to error.
int ssf_decode_jpeg(const uint8_t *data, size_t length, int *width, int *height,
                    uint8_t **pixels, char *error, size_t error_capacity);

/// ssf_decode_jpeg at a reduced DCT scale: the largest of 1/8, 1/4 and 1/2 that keeps the shorter
/// side at least `minimum_side` pixels (full size when none does, or when minimum_side <= 0).
int ssf_decode_jpeg_scaled(const uint8_t *data, size_t length, int minimum_side, int *width, int *height,
                           uint8_t **pixels, char *error, size_t error_capacity);

/// Decodes a PNG (any bit depth, palette, grayscale, with or without alpha) held in memory to
/// interleaved RGB; alpha is dropped. Same conventions as ssf_decode_jpeg.
int ssf_decode_png(const uint8_t *data, size_t length, int *width, int *height,
                   uint8_t **pixels, char *error, size_t error_capacity);

/// Encodes width*height interleaved RGB pixels as a PNG in memory. On success returns 0 and sets
/// *data (malloc'd, *length bytes; release with ssf_free_pixels); otherwise writes a message to error.
int ssf_encode_png(const uint8_t *pixels, int width, int height, uint8_t **data, size_t *length,
                   char *error, size_t error_capacity);

/// Encodes width*height interleaved RGB pixels as a baseline JPEG in memory at `quality` (1–100,
/// libjpeg's quality scaling of its standard tables), otherwise libjpeg's defaults (4:2:0 chroma
/// subsampling, the integer DCT). Same conventions as ssf_encode_png.
int ssf_encode_jpeg(const uint8_t *pixels, int width, int height, int quality, uint8_t **data, size_t *length,
                    char *error, size_t error_capacity);

/// Releases buffers returned by the decoders and the encoder.
void ssf_free_pixels(uint8_t *pixels);

#endif
