"""The shared model store: folders, index, downloads (engine, queue, manager), hosts."""
