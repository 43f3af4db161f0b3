# Sourced by scripts/stack.sh (after common.sh).
# ---- Orthanc -------------------------------------------------------------------------------
ORTHANC_DIR=$STACK_DIR/orthanc

orthanc_install() { ensure_packages orthanc orthanc-dicomweb; }

orthanc_plugin() {
  local so
  so=$(dpkg -L orthanc-dicomweb | grep -E '/libOrthancDicomWeb\.so$' | head -1 || true)
  [ -n "$so" ] || so=$(dpkg -L orthanc-dicomweb | grep -E '/libOrthancDicomWeb\.so' | head -1 || true)
  [ -n "$so" ] || die "no DICOMweb plugin in package orthanc-dicomweb"
  echo "$so"
}

orthanc_port() { node -e 'try { console.log(require(process.argv[1])[process.argv[2]] || "") } catch { console.log("") }' "$ORTHANC_DIR/orthanc.json" "$1"; }

orthanc_url() { echo "http://127.0.0.1:$(orthanc_port HttpPort)"; }

orthanc_answers() {
  [ -f "$ORTHANC_DIR/password" ] || return 1
  curl -fsS -m 2 -u "$ORTHANC_USER:$(cat "$ORTHANC_DIR/password")" "$(orthanc_url)/system" >/dev/null 2>&1
}

# Writes orthanc.json: loopback-only HTTP with basic auth, the DICOMweb plugin, storage in the data folder.
orthanc_config() {
  local http dicom plugin
  http=$(free_port "$(orthanc_port HttpPort 2>/dev/null || true)")
  dicom=$(free_port "$(orthanc_port DicomPort 2>/dev/null || true)")
  [ "$http" != "$dicom" ] || dicom=$(free_port 0)
  plugin=$(orthanc_plugin)
  (umask 077; node -e '
    const [dir, http, dicom, plugin, user, password] = process.argv.slice(1);
    const cfg = {
      Name: "cxr-stack",
      StorageDirectory: dir + "/db",
      IndexDirectory: dir + "/db",
      HttpPort: Number(http),
      DicomPort: Number(dicom),
      DicomAet: "CXR",
      RemoteAccessAllowed: false,
      AuthenticationEnabled: true,
      RegisteredUsers: { [user]: password },
      Plugins: [plugin],
      DicomWeb: { Enable: true, Root: "/dicom-web/", EnableWado: false, Host: "127.0.0.1:" + http, Ssl: false },
      HttpDescribeErrors: true,
      StableAge: 5,
    };
    require("fs").writeFileSync(dir + "/orthanc.json", JSON.stringify(cfg, null, 2) + "\n", { mode: 0o600 });
  ' "$ORTHANC_DIR" "$http" "$dicom" "$plugin" "$ORTHANC_USER" "$(cat "$ORTHANC_DIR/password")")
}

orthanc_up() {
  mkdir -p "$ORTHANC_DIR/db"
  chmod 700 "$ORTHANC_DIR"
  if pid_alive "$ORTHANC_DIR/pid" && orthanc_answers; then
    log "orthanc already running at $(orthanc_url)"
    return 0
  fi
  stop_pid "$ORTHANC_DIR/pid" orthanc TERM Orthanc
  orthanc_install
  if [ ! -s "$ORTHANC_DIR/password" ]; then
    (umask 077; random_secret > "$ORTHANC_DIR/password")
  fi
  chmod 600 "$ORTHANC_DIR/password"
  orthanc_config
  # setsid: its own session, so that it outlives this shell and a terminal's Ctrl-C.
  setsid Orthanc "$ORTHANC_DIR/orthanc.json" >"$ORTHANC_DIR/orthanc.log" 2>&1 < /dev/null &
  echo $! > "$ORTHANC_DIR/pid"
  local i
  for i in $(seq 1 300); do
    if orthanc_answers; then
      log "orthanc up at $(orthanc_url) (DICOM port $(orthanc_port DicomPort), AET CXR)"
      return 0
    fi
    pid_alive "$ORTHANC_DIR/pid" || break
    sleep 0.1
  done
  tail -n 20 "$ORTHANC_DIR/orthanc.log" >&2 || true
  stop_pid "$ORTHANC_DIR/pid" orthanc TERM Orthanc
  die "orthanc did not answer /system within 30 s (log: $ORTHANC_DIR/orthanc.log)"
}

orthanc_down() { stop_pid "$ORTHANC_DIR/pid" orthanc TERM Orthanc; }
orthanc_kill() { stop_pid "$ORTHANC_DIR/pid" orthanc KILL Orthanc; }

orthanc_status() {
  if pid_alive "$ORTHANC_DIR/pid" && orthanc_answers; then
    echo "orthanc: running at $(orthanc_url), DICOM port $(orthanc_port DicomPort) (pid $(cat "$ORTHANC_DIR/pid"))"
    return 0
  fi
  echo "orthanc: stopped"
  return 1
}

orthanc_env() {
  echo "CXR_ORTHANC_URL=$(orthanc_url)"
  echo "CXR_ORTHANC_USER=$ORTHANC_USER"
  echo "CXR_ORTHANC_PASSWORD=$(cat "$ORTHANC_DIR/password")"
}
