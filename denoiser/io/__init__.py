"""Image I/O split by job: formats (the Image type), exif, decode, encode. Import it through
`denoiser.imageio`, its public face."""
