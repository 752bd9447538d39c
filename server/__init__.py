"""Flask routes beside the Dash pages: JSON API, downloads, chunked upload, sign-in, and the job helpers."""
