"""Processes, devices and disks: multi-device meshes, folder locks, atomic files, compilation, worker pools."""
