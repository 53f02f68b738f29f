"""Feasibility services: the one source of every number the pages, the API and the
reports show (`metrics`, `criteria`, `consort`, `milestones`, `public`)."""
