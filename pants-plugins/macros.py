# BUILD-file macros, loaded before every BUILD file (pants.toml `build_file_prelude_globs`).


def host_pip_command(**kwargs):
    """A `shell_command` whose `python3 -m pip` is the host's, with the host's pip configuration:
    for what the package index serves only through it (tools/wheelhouse.py, tools/helm.py).

    Tools: python3, and what a version manager's `python3` shim runs (pyenv: bash, coreutils).
    Environment: the host's pip configuration (its config files and PIP_* variables), but not
    PIP_CONFIG_FILE: Pants sets it to /dev/null for its own resolves ([subprocess-environment]),
    and a nested ./pants in the tests would inherit it.
    """
    shell_command(
        tools=[
            "python3", "bash", "env", "cat", "head", "sed", "grep", "cut", "tr", "sort", "ls",
            "mkdir", "uname", "readlink", "dirname", "basename",
        ],
        workdir="/",
        extra_env_vars=[
            "HOME", "PYENV_ROOT", "PIP_FIND_LINKS", "PIP_INDEX_URL", "PIP_EXTRA_INDEX_URL",
            "PIP_CERT", "SSL_CERT_FILE",
        ],
        **kwargs,
    )
