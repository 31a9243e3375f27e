"""Netron: serve one model on loopback (`view`), and draw it headlessly into PNG or SVG (`render`)."""
