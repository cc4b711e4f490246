"""Who may do what: roles and their permissions, passwords, login throttling and API tokens."""
