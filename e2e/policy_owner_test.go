//go:build unix

package e2e

// Issue 21, item 6: the policy file, each link on the way to it and each
// directory holding them must be the user's or root's and writable by
// nobody else (root's sticky directories, such as /nix/store, excepted).
// The attacker here is another user (uid 65534) who plants a link of theirs,
// or finds a directory on the way open to them.

import (
	"context"
	"errors"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/opxhq/opx/api"
	"github.com/opxhq/opx/e2e/harness"
)

// stranger is the uid (and gid) of the other user who plants links.
const stranger = 65534

// needRoot skips a test that must give files to another user.
func needRoot(t *testing.T) {
	t.Helper()
	if uid := os.Geteuid(); uid != 0 {
		t.Skipf("needs root to give a link to uid %d (os.Lchown); running as uid %d", stranger, uid)
	}
}

// ownerPolicy is a policy that lets a (and only a) read op://Prod/*.
func ownerPolicy(a string) string {
	return `{"allow": [{"path": "` + a + `", "refs": ["op://Prod/*"]}], "default_deny": true}`
}

// plantForeignLink replaces policy.json with a link owned by the stranger
// to a root-owned file holding "{}" (no rule: every program may read
// everything), and returns the policy path.
func (e *testEnv) plantForeignLink() string {
	e.T.Helper()
	allowAll := filepath.Join(e.Dir, "allow-all.json")
	if err := os.WriteFile(allowAll, []byte("{}"), 0o644); err != nil {
		e.T.Fatal(err)
	}
	os.MkdirAll(e.ConfigDir, 0o700)
	path := filepath.Join(e.ConfigDir, "policy.json")
	os.Remove(path)
	if err := os.Symlink(allowAll, path); err != nil {
		e.T.Fatal(err)
	}
	if err := os.Lchown(path, stranger, stranger); err != nil {
		e.T.Fatal(err)
	}
	return path
}

// expectFailedClosed checks that prog cannot read ref because the policy
// failed closed, for a reason that holds every one of want, as the denial
// and the daemon's status say it.
func (e *testEnv) expectFailedClosed(prog, ref string, want ...string) {
	e.T.Helper()
	r := e.helper(prog, "read", ref)
	if r.Code != 1 || r.Stdout != "" || !strings.Contains(r.Stderr, "forbidden") || !strings.Contains(r.Stderr, "failed closed") {
		e.T.Errorf("%s reads %s: %+v, want forbidden, failed closed", prog, ref, r)
	}
	for _, w := range want {
		if !strings.Contains(r.Stderr, w) {
			e.T.Errorf("%s reads %s: stderr %q, want it to say %q", prog, ref, r.Stderr, w)
		}
	}
	st, full := e.policyStatus()
	if !full {
		return
	}
	if st.State != "failed_closed" || st.Loaded {
		e.T.Errorf("status policy = %+v, want failed_closed", st)
	}
	for _, w := range want {
		if !strings.Contains(st.Reason, w) {
			e.T.Errorf("status policy reason = %q, want it to say %q", st.Reason, w)
		}
	}
}

// policyStatus is the policy part of `opx status --json`, run by this test.
// full is false when the daemon gave the test the short answer, without
// the policy (as it may to a program the policy allows nothing, which a
// failed-closed policy makes of every program): the denial's own text is
// then what says why.
func (e *testEnv) policyStatus() (p api.PolicyStatus, full bool) {
	e.T.Helper()
	st := e.Status()
	if st.Policy.Path == "" {
		e.T.Log("opx status gave the short answer, without the policy: its policy part is not checked")
		return st.Policy, false
	}
	return st.Policy, true
}

// (a) With a restrictive policy loaded, the attacker finds the config
// directory open to everyone and puts their link to a root-owned "{}" in
// place of policy.json: the program the policy denied is still denied, and
// status, opx policy check and opx doctor name the directory and the fix.
// Made private again, the directory still holds the stranger's link, which
// is refused for its owner. A good file of the user's brings the policy back.
func TestPolicyOwnerForeignLinkInAnOpenConfigDirFailsClosed(t *testing.T) {
	t.Parallel()
	needRoot(t)
	a, b := buildHelpers(t)
	e := newEnv(t)
	e.OneBuild(harness.Bins().Daemon)
	ref := "op://Prod/db/password"
	e.writePolicy(ownerPolicy(a))
	e.StartDaemon("", "--backend=fake")
	if r := e.helper(b, "read", ref); r.Code != 1 || !strings.Contains(r.Stderr, "forbidden") {
		t.Fatalf("helper b under the good policy: %+v, want denied", r)
	}

	os.Chmod(e.ConfigDir, 0o777)
	path := e.plantForeignLink()
	e.expectFailedClosed(b, ref, e.ConfigDir, "writable by others (mode 0777)", "run: chmod go-w "+e.ConfigDir)
	e.expectFailedClosed(a, ref)

	r := e.Opx("policy", "check", "--path", b, ref)
	if r.Code != 1 || !strings.Contains(r.Stderr, e.ConfigDir) || !strings.Contains(r.Stderr, "writable by others") || !strings.Contains(r.Stderr, "chmod go-w "+e.ConfigDir) {
		t.Errorf("opx policy check with the directory open = %+v, want the directory and the fix", r)
	}
	_, checks, _ := e.doctorJSON()
	if c := checks["policy file"]; len(c) != 1 || c[0].OK || !strings.Contains(c[0].Detail, e.ConfigDir) || c[0].Fix != "run: chmod go-w "+e.ConfigDir {
		t.Errorf("doctor's policy file check = %+v, want a failure naming %s and its fix", c, e.ConfigDir)
	}

	// (b) in a running daemon: the directory is private again, but the
	// link in it is the stranger's.
	os.Chmod(e.ConfigDir, 0o700)
	e.expectFailedClosed(b, ref, path, "owned by uid 65534", "rm "+path)
	_, checks, _ = e.doctorJSON()
	if c := checks["policy file"]; len(c) != 1 || c[0].OK || !strings.Contains(c[0].Detail, "owned by uid 65534") {
		t.Errorf("doctor's policy file check = %+v, want the link's owner", c)
	}

	os.Remove(path)
	e.writePolicy(ownerPolicy(a))
	if r := e.helper(a, "read", ref); r.Code != 0 || r.Stdout != fv(ref)+"\n" {
		t.Errorf("helper a after a good file returned: %+v", r)
	}
	if r := e.helper(b, "read", ref); r.Code != 1 || !strings.Contains(r.Stderr, "forbidden") {
		t.Errorf("helper b after a good file returned: %+v", r)
	}
	if st, full := e.policyStatus(); full && (st.State != "loaded" || st.Reason != "") {
		t.Errorf("status policy after a good file returned = %+v", st)
	}
}

// (b) A link owned by another user, in a config directory that is private:
// refused for its owner, even though it names a root-owned file.
func TestPolicyOwnerForeignLinkInAPrivateDirIsRefused(t *testing.T) {
	t.Parallel()
	needRoot(t)
	a, b := buildHelpers(t)
	e := newEnv(t)
	e.OneBuild(harness.Bins().Daemon)
	ref := "op://Prod/db/password"
	e.writePolicy(ownerPolicy(a))
	e.StartDaemon("", "--backend=fake")
	if r := e.helper(a, "read", ref); r.Code != 0 {
		t.Fatalf("helper a under the good policy: %+v", r)
	}
	path := e.plantForeignLink()
	e.expectFailedClosed(b, ref, path, "(a link) is owned by uid 65534", "run: rm "+path)
}

// (c) Home Manager's layout: policy.json is a link of the user's to a
// root-owned link in a root-owned, group-writable sticky directory (the
// Nix store, root:nixbld 1775), which names a root-owned file of mode 0444.
// It is a policy like any other. The same store without its sticky bit
// could have its entries replaced by the group: refused, naming it.
func TestPolicyOwnerNixChainIsAccepted(t *testing.T) {
	t.Parallel()
	needRoot(t) // the store must be root's and the user someone else
	a, b := buildHelpers(t)
	e := newEnv(t)
	e.OneBuild(harness.Bins().Daemon)
	ref := "op://Prod/db/password"
	store := filepath.Join(e.Dir, "nix", "store")
	files := filepath.Join(store, "0a1b-home-manager-files")
	if err := os.MkdirAll(files, 0o755); err != nil {
		t.Fatal(err)
	}
	os.Chmod(filepath.Join(e.Dir, "nix"), 0o755)
	file := filepath.Join(store, "2c3d-opx-policy.json")
	if err := os.WriteFile(file, []byte(ownerPolicy(a)), 0o444); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(file, filepath.Join(files, "policy.json")); err != nil {
		t.Fatal(err)
	}
	os.Chmod(files, 0o555)
	os.Chmod(store, fs.ModeSticky|0o775)
	os.MkdirAll(e.ConfigDir, 0o700)
	if err := os.Symlink(filepath.Join(files, "policy.json"), filepath.Join(e.ConfigDir, "policy.json")); err != nil {
		t.Fatal(err)
	}

	e.StartDaemon("", "--backend=fake")
	if r := e.helper(a, "read", ref); r.Code != 0 || r.Stdout != fv(ref)+"\n" {
		t.Errorf("helper a under the Nix store policy: %+v", r)
	}
	if r := e.helper(b, "read", ref); r.Code != 1 || !strings.Contains(r.Stderr, "forbidden") || strings.Contains(r.Stderr, "failed closed") {
		t.Errorf("helper b under the Nix store policy: %+v, want denied by the policy", r)
	}
	if st, full := e.policyStatus(); full && (st.State != "loaded" || st.Rules != 1) {
		t.Errorf("status policy = %+v, want loaded with 1 rule", st)
	}
	_, checks, _ := e.doctorJSON()
	if c := checks["policy file"]; len(c) != 1 || !c[0].OK {
		t.Errorf("doctor's policy file check = %+v, want it to pass", c)
	}

	os.Chmod(store, 0o775)
	e.expectFailedClosed(a, ref, store, "writable by others (mode 0775)", "chmod go-w "+store)
	os.Chmod(store, fs.ModeSticky|0o775)
	if r := e.helper(a, "read", ref); r.Code != 0 {
		t.Errorf("helper a after the store is sticky again: %+v", r)
	}
}

// (d) A daemon started with such a file refuses to start, saying which
// file, link or directory is at fault and how to fix it, as it does for a
// file that does not parse.
func TestPolicyOwnerBadFileStopsTheDaemon(t *testing.T) {
	t.Parallel()
	needRoot(t)
	for _, tc := range []struct {
		name  string
		spoil func(e *testEnv) []string // returns what the error must say
	}{
		{"a link of another user", func(e *testEnv) []string {
			path := e.plantForeignLink()
			return []string{path, "owned by uid 65534, neither you nor root", "rm " + path}
		}},
		{"an open config directory", func(e *testEnv) []string {
			e.writePolicy(`{"default_deny": true}`)
			os.Chmod(e.ConfigDir, 0o777)
			return []string{e.ConfigDir, "writable by others (mode 0777)", "run: chmod go-w " + e.ConfigDir}
		}},
		{"a directory of another user above", func(e *testEnv) []string {
			e.writePolicy(`{"default_deny": true}`)
			parent := filepath.Dir(e.ConfigDir)
			os.Chown(parent, stranger, stranger)
			return []string{parent, "owned by uid 65534"}
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			e := newEnv(t)
			want := tc.spoil(e)
			r := e.daemonWithin(15 * time.Second)
			if r.Code != 1 {
				t.Fatalf("daemon with %s: %+v, want exit 1", tc.name, r)
			}
			for _, w := range want {
				if !strings.Contains(r.Stderr, w) {
					t.Errorf("daemon with %s: stderr %q, want it to say %q", tc.name, r.Stderr, w)
				}
			}
		})
	}
}

// daemonWithin runs `opx daemon --backend=fake` in the foreground and
// returns what it printed; one still running after d (it started) is
// stopped and reported with code -1.
func (e *testEnv) daemonWithin(d time.Duration) harness.Result {
	e.T.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), d)
	defer cancel()
	cmd := exec.CommandContext(ctx, e.Daemon, "daemon", "--backend=fake")
	cmd.Env = e.Environ()
	var out, errb strings.Builder
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	code := 0
	var ee *exec.ExitError
	switch {
	case ctx.Err() != nil:
		code = -1
	case errors.As(err, &ee):
		code = ee.ExitCode()
	case err != nil:
		e.T.Fatalf("run opx daemon: %v", err)
	}
	return harness.Result{Stdout: out.String(), Stderr: errb.String(), Code: code}
}
