"""The built-in plugins of Stillhouse: each subpackage registers one kind through the kernel hooks."""
