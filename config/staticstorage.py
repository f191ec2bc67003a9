"""Static files with debug off: whitenoise's gzip-compressed, content-hashed names.

Django also rewrites the relative `import ... from "./x.js"` of our ES modules to the
hashed names, so a page and the modules it imports always come from the same build.
"""

from whitenoise.storage import CompressedManifestStaticFilesStorage


class HashedStaticStorage(CompressedManifestStaticFilesStorage):
    support_js_module_import_aggregation = True
