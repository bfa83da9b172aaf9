"""Sample files shipped with plabdata (platform exports to migrate from: ``exports/``)."""
