"""The product catalog in and out of CSV files: `csv_import.import_products`, `csv_export.export_products`."""
