"""The company reorder rule (issue 6): one per variant, watching the total across every site's replicated stock.

Like every rule it is a local row of the box it was set on. `buyer_site_id` names the one site whose box
drafts the company's purchase orders for it, so two boxes holding the same rule never both order; every box
that holds the rule also uses it to suggest a transfer from a site with surplus before buying for its own.
"""


def up(conn):
    conn.execute("""
        CREATE TABLE reorder_company_rule (
            id             INTEGER PRIMARY KEY,
            variant_id     INTEGER NOT NULL UNIQUE REFERENCES variant(id),
            reorder_point  INTEGER NOT NULL CHECK (reorder_point >= 0),
            reorder_qty    INTEGER CHECK (reorder_qty IS NULL OR reorder_qty > 0),
            max_qty        INTEGER CHECK (max_qty IS NULL OR max_qty > 0),
            supplier_id    INTEGER REFERENCES supplier(id),
            buyer_site_id  TEXT NOT NULL REFERENCES site(id)
        )""")
