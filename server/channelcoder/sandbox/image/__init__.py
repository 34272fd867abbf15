"""The sandbox image: which Dockerfile, its content key, resolution and builds."""
