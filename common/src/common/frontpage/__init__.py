"""The edge's front page (`/`) and admin index (`/admin/`): links to every admin, every
service's API docs and the operators' tools (docs/adr/0020-front-page-and-offline-docs.md).
"""
