"""Partner and site operations, one module per sub-domain: directory (partners), sites
(activation gate, status), approvals, documents (approval letters)."""
