"""Flower's configuration file for HMS: ``celery -A hms_celery flower --conf=<this file>``.

Not a module to import: Flower executes it (tornado's ``parse_config_file``) after reading
its command line and ``FLOWER_*`` variables, and takes every global named like one of its
options.  It sets ``address``, ``port`` and ``basic_auth`` from the HMS settings
(:func:`hms_celery.flower.flower_config`) and stops Flower, exit code 2, rather than serve a
non-loopback address without authentication.
"""

import sys

from tornado.options import options as _flower

from hms_celery.errors import SettingsError as _SettingsError
from hms_celery.flower import flower_config as _flower_config
from hms_celery.settings import get_settings as _get_settings

try:
    _config = _flower_config(
        _get_settings(),
        address=_flower.address or None,  # --address / FLOWER_ADDRESS, if given
        basic_auth=list(_flower.basic_auth or ()),  # --basic-auth / FLOWER_BASIC_AUTH
    )
except _SettingsError as _exc:
    sys.stderr.write(f"error: {_exc}\n")
    raise SystemExit(2) from None

globals().update(_config.tornado_options())
