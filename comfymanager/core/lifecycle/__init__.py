"""A project's life after creation: snapshots (``snapshots``), going back to one
(``rollback``) and updating with a way back (``update``)."""
