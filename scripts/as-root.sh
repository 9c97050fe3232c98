# Sourced by the setup scripts: run a command as root (directly, or through sudo). Needs log().
as_root() {
  if [ "$(id -u)" -eq 0 ]; then
    "$@"
  elif command -v sudo >/dev/null 2>&1; then
    sudo "$@"
  else
    log "need root (or sudo) to run: $*"
    exit 1
  fi
}
