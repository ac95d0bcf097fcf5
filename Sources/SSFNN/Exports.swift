// The file formats (safetensors, PyTorch and NumPy checkpoints, SHA-256, JSON) live in
// SSFFormats; `import SSFNN` brings them along so that model code reads checkpoints with one import.
@_exported import SSFFormats
