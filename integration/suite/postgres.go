//go:build unix

package suite

import (
	"bytes"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"net"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"testing"
)

// Postgres is a real PostgreSQL server (Debian's postgresql package) that a
// test starts on a loopback port, as an unprivileged user, for Vault's and
// OpenBao's database secrets engine.
type Postgres struct {
	Port          int
	SuperUser     string
	SuperPassword string
	bin           string
	cred          *syscall.Credential
	dir           string
}

// pgBin finds the directory of initdb and pg_ctl: on PATH, or Debian's
// versioned directory.
func pgBin() (string, error) {
	if p, err := exec.LookPath("pg_ctl"); err == nil {
		return filepath.Dir(p), nil
	}
	dirs, _ := filepath.Glob("/usr/lib/postgresql/*/bin")
	sort.Sort(sort.Reverse(sort.StringSlice(dirs)))
	for _, d := range dirs {
		if _, err := os.Stat(filepath.Join(d, "pg_ctl")); err == nil {
			return d, nil
		}
	}
	return "", fmt.Errorf("PostgreSQL is not installed (Debian package postgresql; .ci/run installs it)")
}

// StartPostgres starts a throwaway cluster, or skips the test saying why it
// cannot. It is stopped and removed when the test ends.
func StartPostgres(t *testing.T) *Postgres {
	t.Helper()
	bin, err := pgBin()
	if err != nil {
		t.Skip(err)
	}
	if _, err := exec.LookPath("psql"); err != nil {
		t.Skip("psql is not installed (Debian package postgresql-client)")
	}
	pg := &Postgres{bin: bin, SuperUser: "opxsuper"}
	// PostgreSQL refuses to run as root: as root, run it as the postgres
	// user the package creates.
	owner := -1
	if os.Geteuid() == 0 {
		u, err := user.Lookup("postgres")
		if err != nil {
			t.Skip("running as root and there is no postgres user to run PostgreSQL as")
		}
		uid, _ := strconv.Atoi(u.Uid)
		gid, _ := strconv.Atoi(u.Gid)
		pg.cred = &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid)}
		owner = uid
	}
	dir, err := os.MkdirTemp("", "opx-pg")
	if err != nil {
		t.Fatal(err)
	}
	pg.dir = dir
	t.Cleanup(func() { os.RemoveAll(dir) })
	os.Chmod(dir, 0o755)
	b := make([]byte, 16)
	rand.Read(b)
	pg.SuperPassword = hex.EncodeToString(b)
	pw := filepath.Join(dir, "pw")
	if err := os.WriteFile(pw, []byte(pg.SuperPassword+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	data, sock := filepath.Join(dir, "data"), filepath.Join(dir, "sock")
	for _, d := range []string{data, sock} {
		if err := os.Mkdir(d, 0o700); err != nil {
			t.Fatal(err)
		}
	}
	if owner >= 0 {
		for _, p := range []string{pw, data, sock} {
			os.Chown(p, owner, int(pg.cred.Gid))
		}
	}
	if out, err := pg.run("initdb", "-D", data, "-U", pg.SuperUser, "--pwfile", pw, "--auth=scram-sha-256", "--no-locale", "-E", "UTF8"); err != nil {
		t.Fatalf("initdb: %v\n%s", err, out)
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	pg.Port = l.Addr().(*net.TCPAddr).Port
	l.Close()
	opts := fmt.Sprintf("-c listen_addresses=127.0.0.1 -p %d -k %s -c fsync=off", pg.Port, sock)
	if out, err := pg.run("pg_ctl", "-D", data, "-l", filepath.Join(sock, "log"), "-o", opts, "-w", "-t", "60", "start"); err != nil {
		log, _ := os.ReadFile(filepath.Join(sock, "log"))
		t.Fatalf("pg_ctl start: %v\n%s\n%s", err, out, log)
	}
	t.Cleanup(func() { pg.run("pg_ctl", "-D", data, "-m", "immediate", "-w", "stop") })
	return pg
}

func (pg *Postgres) run(prog string, args ...string) ([]byte, error) {
	cmd := exec.Command(filepath.Join(pg.bin, prog), args...)
	cmd.Dir = pg.dir
	if pg.cred != nil {
		cmd.SysProcAttr = &syscall.SysProcAttr{Credential: pg.cred}
	}
	return cmd.CombinedOutput()
}

// ConnectionURL is the URL template Vault's database engine takes.
func (pg *Postgres) ConnectionURL() string {
	return fmt.Sprintf("postgresql://{{username}}:{{password}}@127.0.0.1:%d/postgres?sslmode=disable", pg.Port)
}

// Query runs sql as user (with password) through psql and returns its
// unaligned output, or the error psql gave (a refused login among them).
func (pg *Postgres) Query(user, password, sql string) (string, error) {
	cmd := exec.Command("psql", "-X", "-tA", "-h", "127.0.0.1", "-p", strconv.Itoa(pg.Port), "-U", user, "-d", "postgres", "-c", sql)
	cmd.Env = append(os.Environ(), "PGPASSWORD="+password, "PGCONNECT_TIMEOUT=10", "PGSSLMODE=disable")
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	if err := cmd.Run(); err != nil {
		return "", fmt.Errorf("psql as %s: %v: %s", user, err, strings.TrimSpace(errb.String()))
	}
	return strings.TrimSpace(out.String()), nil
}
