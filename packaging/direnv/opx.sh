# opx for direnv: `use opx [FILE]...` in an .envrc exports the variables of
# the env files (default .env.op), each ref resolved by opx in one round
# trip, and has direnv reload when a file changes.
#
# Install: copy this file to ~/.config/direnv/lib/opx.sh (direnv sources
# every file there), or `source` it from ~/.config/direnv/direnvrc.
#
#   # .envrc
#   use opx .env.op
#
#   # .env.op (dotenv syntax, as `opx run --env-file` reads it)
#   DATABASE_URL=op://Private/db/url
#   API_KEY="vault://secret/app#api_key"
#   LOG_LEVEL=debug
use_opx() {
  local files=("$@") args=() out f
  [ ${#files[@]} -gt 0 ] || files=(.env.op)
  for f in "${files[@]}"; do
    watch_file "$f"
    args+=(--env-file "$f")
  done
  # Nothing is exported when a ref fails: opx names it on stderr.
  out=$("${OPX:-opx}" resolve --export "${args[@]}") || return
  eval "$out"
}
