// JPEG and PNG decoding (and encoding) for SSF: libjpeg's longjmp error handling and libpng's simplified API
// stay on the C side, so Swift sees plain return codes and messages.
#include "ssf_codecs.h"
#include <setjmp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <jpeglib.h>
#include <png.h>

/// Images larger than this many pixels are refused (a corrupt header can claim anything).
static const size_t max_pixels = (size_t)1 << 28;

struct jpeg_error_state {
    struct jpeg_error_mgr manager;
    jmp_buf jump;
    char *message;
    size_t capacity;
};

static void jpeg_fail(j_common_ptr info) {
    struct jpeg_error_state *state = (struct jpeg_error_state *)info->err;
    char buffer[JMSG_LENGTH_MAX];
    (*info->err->format_message)(info, buffer);
    snprintf(state->message, state->capacity, "invalid JPEG: %s", buffer);
    longjmp(state->jump, 1);
}

static void jpeg_quiet(j_common_ptr info, int level) { (void)info; (void)level; }

int ssf_decode_jpeg(const uint8_t *data, size_t length, int *width, int *height,
                    uint8_t **pixels, char *error, size_t error_capacity) {
    return ssf_decode_jpeg_scaled(data, length, 0, width, height, pixels, error, error_capacity);
}

int ssf_decode_jpeg_scaled(const uint8_t *data, size_t length, int minimum_side, int *width, int *height,
                           uint8_t **pixels, char *error, size_t error_capacity) {
    struct jpeg_decompress_struct info;
    struct jpeg_error_state state;
    uint8_t *volatile out = NULL;
    uint8_t *volatile row = NULL;
    *pixels = NULL;
    info.err = jpeg_std_error(&state.manager);
    state.manager.error_exit = jpeg_fail;
    state.manager.emit_message = jpeg_quiet;
    state.message = error;
    state.capacity = error_capacity;
    if (setjmp(state.jump)) {
        jpeg_destroy_decompress(&info);
        free(out);
        free(row);
        return 1;
    }
    jpeg_create_decompress(&info);
    jpeg_mem_src(&info, data, (unsigned long)length);
    jpeg_read_header(&info, TRUE);
    int cmyk = info.jpeg_color_space == JCS_CMYK || info.jpeg_color_space == JCS_YCCK;
    info.out_color_space = cmyk ? JCS_CMYK : JCS_RGB;
    if (minimum_side > 0) {
        // The largest reduction (1/8, 1/4, 1/2) whose shorter side is still at least minimum_side:
        // the IDCT then produces the smaller image directly (libjpeg rounds each side up).
        size_t shorter = info.image_width < info.image_height ? info.image_width : info.image_height;
        for (unsigned denom = 8; denom >= 2; denom /= 2) {
            if ((shorter + denom - 1) / denom >= (size_t)minimum_side) {
                info.scale_num = 1;
                info.scale_denom = denom;
                break;
            }
        }
    }
    jpeg_start_decompress(&info);
    size_t w = info.output_width, h = info.output_height;
    if (w == 0 || h == 0 || w * h > max_pixels) {
        snprintf(error, error_capacity, "invalid JPEG: unsupported size %zux%zu", w, h);
        jpeg_destroy_decompress(&info);
        return 1;
    }
    out = malloc(w * h * 3);
    row = malloc(w * (size_t)info.output_components);
    if (!out || !row) {
        snprintf(error, error_capacity, "out of memory decoding a %zux%zu JPEG", w, h);
        jpeg_destroy_decompress(&info);
        free(out);
        free(row);
        return 1;
    }
    while (info.output_scanline < info.output_height) {
        size_t y = info.output_scanline;
        JSAMPROW rows[1] = {row};
        jpeg_read_scanlines(&info, rows, 1);
        uint8_t *dst = out + y * w * 3;
        if (cmyk) {
            // Adobe writes inverted CMYK: each stored value is 255 − ink, so RGB = value·K/255.
            for (size_t x = 0; x < w; x++) {
                unsigned k = row[4 * x + 3];
                for (int c = 0; c < 3; c++) dst[3 * x + c] = (uint8_t)((row[4 * x + c] * k + 127) / 255);
            }
        } else {
            memcpy(dst, row, w * 3);
        }
    }
    jpeg_finish_decompress(&info);
    jpeg_destroy_decompress(&info);
    free(row);
    *width = (int)w;
    *height = (int)h;
    *pixels = out;
    return 0;
}

int ssf_decode_png(const uint8_t *data, size_t length, int *width, int *height,
                   uint8_t **pixels, char *error, size_t error_capacity) {
    png_image image;
    memset(&image, 0, sizeof image);
    image.version = PNG_IMAGE_VERSION;
    *pixels = NULL;
    if (!png_image_begin_read_from_memory(&image, data, length)) {
        snprintf(error, error_capacity, "invalid PNG: %s", image.message);
        return 1;
    }
    size_t w = image.width, h = image.height;
    if (w == 0 || h == 0 || w * h > max_pixels) {
        snprintf(error, error_capacity, "invalid PNG: unsupported size %zux%zu", w, h);
        png_image_free(&image);
        return 1;
    }
    // Read RGBA and drop alpha (as Pillow's convert("RGB") does); 16-bit samples are taken as
    // sRGB-encoded so they scale to 8 bits without a gamma conversion.
    image.format = PNG_FORMAT_RGBA;
    image.flags |= PNG_IMAGE_FLAG_16BIT_sRGB;
    uint8_t *out = malloc(w * h * 4);
    if (!out) {
        snprintf(error, error_capacity, "out of memory decoding a %zux%zu PNG", w, h);
        png_image_free(&image);
        return 1;
    }
    if (!png_image_finish_read(&image, NULL, out, 0, NULL)) {
        snprintf(error, error_capacity, "invalid PNG: %s", image.message);
        png_image_free(&image);
        free(out);
        return 1;
    }
    for (size_t i = 0; i < w * h; i++) {
        out[3 * i] = out[4 * i];
        out[3 * i + 1] = out[4 * i + 1];
        out[3 * i + 2] = out[4 * i + 2];
    }
    *width = (int)w;
    *height = (int)h;
    *pixels = out;
    return 0;
}

void ssf_free_pixels(uint8_t *pixels) { free(pixels); }

int ssf_encode_png(const uint8_t *pixels, int width, int height, uint8_t **data, size_t *length,
                   char *error, size_t error_capacity) {
    png_image image;
    memset(&image, 0, sizeof image);
    image.version = PNG_IMAGE_VERSION;
    image.width = (png_uint_32)width;
    image.height = (png_uint_32)height;
    image.format = PNG_FORMAT_RGB;
    *data = NULL;
    *length = 0;
    // The first call sizes the output, the second writes it.
    png_alloc_size_t size = 0;
    if (!png_image_write_to_memory(&image, NULL, &size, 0, pixels, 0, NULL)) {
        snprintf(error, error_capacity, "cannot encode PNG: %s", image.message);
        return 1;
    }
    uint8_t *out = malloc(size);
    if (!out) {
        snprintf(error, error_capacity, "out of memory encoding a %dx%d PNG", width, height);
        return 1;
    }
    if (!png_image_write_to_memory(&image, out, &size, 0, pixels, 0, NULL)) {
        snprintf(error, error_capacity, "cannot encode PNG: %s", image.message);
        free(out);
        return 1;
    }
    *data = out;
    *length = size;
    return 0;
}

int ssf_encode_jpeg(const uint8_t *pixels, int width, int height, int quality, uint8_t **data, size_t *length,
                    char *error, size_t error_capacity) {
    struct jpeg_compress_struct info;
    struct jpeg_error_state state;
    *data = NULL;
    *length = 0;
    if (width <= 0 || height <= 0 || (size_t)width * (size_t)height > max_pixels) {
        snprintf(error, error_capacity, "cannot encode JPEG: unsupported size %dx%d", width, height);
        return 1;
    }
    // libjpeg's memory destination mallocs (and grows) the buffer it stores through `holder`; the
    // holder is set before setjmp, so the buffer can be freed after an error.
    unsigned char **holder = calloc(1, sizeof *holder);
    unsigned long *size = calloc(1, sizeof *size);
    if (!holder || !size) {
        snprintf(error, error_capacity, "out of memory encoding a %dx%d JPEG", width, height);
        free(holder);
        free(size);
        return 1;
    }
    info.err = jpeg_std_error(&state.manager);
    state.manager.error_exit = jpeg_fail;
    state.manager.emit_message = jpeg_quiet;
    state.message = error;
    state.capacity = error_capacity;
    if (setjmp(state.jump)) {
        jpeg_destroy_compress(&info);
        free(*holder);
        free(holder);
        free(size);
        return 1;
    }
    jpeg_create_compress(&info);
    jpeg_mem_dest(&info, holder, size);
    info.image_width = (JDIMENSION)width;
    info.image_height = (JDIMENSION)height;
    info.input_components = 3;
    info.in_color_space = JCS_RGB;
    jpeg_set_defaults(&info);
    jpeg_set_quality(&info, quality < 1 ? 1 : quality > 100 ? 100 : quality, TRUE);
    jpeg_start_compress(&info, TRUE);
    while (info.next_scanline < info.image_height) {
        JSAMPROW rows[1] = {(JSAMPROW)(pixels + (size_t)info.next_scanline * (size_t)width * 3)};
        jpeg_write_scanlines(&info, rows, 1);
    }
    jpeg_finish_compress(&info);
    jpeg_destroy_compress(&info);
    *data = *holder;
    *length = (size_t)*size;
    free(holder);
    free(size);
    return 0;
}
