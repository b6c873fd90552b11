"""The views as library functions: each takes a Network and returns Figures (pictures with
their sidecars) or data; `views.network` attaches them to Network as methods."""
