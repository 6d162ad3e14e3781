#!/bin/sh
# Entrypoint of the project image: refuse to start with an empty or placeholder secret, then run
# the command. Every variable whose name says it is a secret (..PASSWORD.., ..SECRET..) and that is
# set must hold a real value: `.env.example` ships `CHANGE-ME` placeholders, and a stack started
# with them would have guessable database and artifact-store passwords. A `NAME_FILE` variable
# (a mounted secret file) is checked by its file's content. Compose's `${VAR:?}` already refuses
# unset or empty values in the compose file; this check also covers `docker run -e` and
# placeholders, and names every offending variable at once.
set -eu

bad=""
for name in $(env | sed -n 's/^\([A-Za-z_][A-Za-z0-9_]*\)=.*/\1/p' | grep -E 'PASSWORD|SECRET' || true); do
  value=$(printenv "$name") || continue  # a line of a multi-line value, not a variable
  case "$name" in
    *_FILE)
      if [ ! -r "$value" ]; then
        bad="$bad $name(unreadable file $value)"
        continue
      fi
      value=$(cat "$value")
      ;;
  esac
  if [ -z "$value" ]; then
    bad="$bad $name(empty)"
  elif printf '%s' "$value" | grep -qi 'change-me'; then
    bad="$bad $name(placeholder CHANGE-ME)"
  fi
done
if [ -n "$bad" ]; then
  echo "forecasting: refusing to start, set real secrets in .env:$bad" >&2
  exit 78  # EX_CONFIG
fi
exec "$@"
