"""Running versions locally: in-process (``v.run``) and served like KRE (``v.serve``)."""
