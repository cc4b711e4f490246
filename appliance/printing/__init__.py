"""Label printing: layouts, renderers, printer transports and the print queue (issue 7)."""
