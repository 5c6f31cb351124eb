//go:build unix

package policy

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
)

const goodPolicy = `{"allow": [{"path": "/a", "refs": ["*"]}], "default_deny": true}`

// nobody is the uid (and gid) that owns what "another user" planted.
const nobody = 65534

// privateDir returns a fresh directory of this user, mode 0700 whatever
// the umask (a group-writable test directory would be refused).
func privateDir(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	if err := os.Chmod(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	return dir
}

func mkdir(t *testing.T, dir string, mode fs.FileMode) string {
	t.Helper()
	if err := os.Mkdir(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(dir, mode); err != nil { // whatever the umask
		t.Fatal(err)
	}
	return dir
}

func writeFile(t *testing.T, path, body string, mode fs.FileMode) string {
	t.Helper()
	if err := os.WriteFile(path, []byte(body), mode); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(path, mode); err != nil {
		t.Fatal(err)
	}
	return path
}

func symlink(t *testing.T, target, link string) string {
	t.Helper()
	if err := os.Symlink(target, link); err != nil {
		t.Fatal(err)
	}
	return link
}

func lchown(t *testing.T, path string, uid int) {
	t.Helper()
	if err := os.Lchown(path, uid, uid); err != nil {
		t.Fatal(err)
	}
}

// TestCheckFile holds the rule of CheckFile: a file, each link on the way
// and each directory holding them are yours or root's and writable by
// nobody else, root's sticky directories excepted.
func TestCheckFile(t *testing.T) {
	for _, tc := range []struct {
		name string
		// root: the case needs uid 0, to give a file to another user or
		// to make a directory root's.
		root bool
		// setup builds the case in dir and returns the policy path and the
		// path the fault must name ("" when the file is good).
		setup func(t *testing.T, dir string) (path, fault string)
		want  []string // in the error; nil: no error
	}{
		{"a private file", false, func(t *testing.T, dir string) (string, string) {
			return writeFile(t, filepath.Join(dir, "policy.json"), goodPolicy, 0o600), ""
		}, nil},
		{"a group-writable directory", false, func(t *testing.T, dir string) (string, string) {
			c := mkdir(t, filepath.Join(dir, "c"), 0o770)
			return writeFile(t, filepath.Join(c, "policy.json"), goodPolicy, 0o600), c
		}, []string{"a directory on the way to the policy file", "writable by others (mode 0770)", "run: chmod go-w "}},
		{"a world-writable directory above", false, func(t *testing.T, dir string) (string, string) {
			c := mkdir(t, filepath.Join(dir, "c"), 0o777)
			d := mkdir(t, filepath.Join(c, "op-authd"), 0o700)
			return writeFile(t, filepath.Join(d, "policy.json"), goodPolicy, 0o600), c
		}, []string{"writable by others (mode 0777)"}},
		{"a sticky world-writable directory of yours", false, func(t *testing.T, dir string) (string, string) {
			if os.Geteuid() == 0 {
				t.Skip("as root, the directory is root's, which the rule allows")
			}
			c := mkdir(t, filepath.Join(dir, "c"), fs.ModeSticky|0o777)
			return writeFile(t, filepath.Join(c, "policy.json"), goodPolicy, 0o600), c
		}, []string{"writable by others (mode 1777)"}},
		{"a sticky world-writable directory of root's", true, func(t *testing.T, dir string) (string, string) {
			c := mkdir(t, filepath.Join(dir, "c"), fs.ModeSticky|0o777)
			return writeFile(t, filepath.Join(c, "policy.json"), goodPolicy, 0o600), ""
		}, nil},
		{"a sticky directory of another user", true, func(t *testing.T, dir string) (string, string) {
			c := mkdir(t, filepath.Join(dir, "c"), fs.ModeSticky|0o777)
			lchown(t, c, nobody)
			return writeFile(t, filepath.Join(c, "policy.json"), goodPolicy, 0o600), c
		}, []string{"owned by uid 65534, neither you nor root", "sudo chown"}},
		{"a private directory of another user", true, func(t *testing.T, dir string) (string, string) {
			c := mkdir(t, filepath.Join(dir, "c"), 0o755)
			p := writeFile(t, filepath.Join(c, "policy.json"), goodPolicy, 0o600)
			lchown(t, c, nobody)
			return p, c
		}, []string{"a directory on the way to the policy file", "owned by uid 65534"}},
		{"a file of another user", true, func(t *testing.T, dir string) (string, string) {
			p := writeFile(t, filepath.Join(dir, "policy.json"), goodPolicy, 0o644)
			lchown(t, p, nobody)
			return p, p
		}, []string{"owned by uid 65534, neither you nor root", "replace it with a file of your own"}},
		{"a link of another user to a good file", true, func(t *testing.T, dir string) (string, string) {
			target := writeFile(t, filepath.Join(dir, "good.json"), "{}", 0o444)
			p := symlink(t, target, filepath.Join(dir, "policy.json"))
			lchown(t, p, nobody)
			return p, p
		}, []string{"(a link) is owned by uid 65534", "run: rm "}},
		{"a link of another user in the middle of a chain", true, func(t *testing.T, dir string) (string, string) {
			target := writeFile(t, filepath.Join(dir, "good.json"), "{}", 0o444)
			mid := symlink(t, target, filepath.Join(dir, "mid"))
			lchown(t, mid, nobody)
			return symlink(t, "mid", filepath.Join(dir, "policy.json")), mid
		}, []string{"a link on the way to the policy file", "owned by uid 65534"}},
		{"a link to a file in a world-writable directory", false, func(t *testing.T, dir string) (string, string) {
			open := mkdir(t, filepath.Join(dir, "open"), 0o777)
			target := writeFile(t, filepath.Join(open, "good.json"), goodPolicy, 0o600)
			return symlink(t, target, filepath.Join(dir, "policy.json")), open
		}, []string{"writable by others (mode 0777)", "chmod go-w " + "OPEN"}},
		{"a file behind links is judged itself", false, func(t *testing.T, dir string) (string, string) {
			target := writeFile(t, filepath.Join(dir, "target.json"), goodPolicy, 0o666)
			return symlink(t, "target.json", filepath.Join(dir, "policy.json")), target
		}, []string{"(the policy file, through links) is writable by others (mode 0666)"}},
		{"a Nix store chain", true, func(t *testing.T, dir string) (string, string) {
			// ~/.config/op-authd/policy.json -> /nix/store/…-home-manager-files/…/policy.json
			// -> /nix/store/…-policy.json, the store root's and 1775.
			store := mkdir(t, filepath.Join(dir, "store"), fs.ModeSticky|0o775)
			writeFile(t, filepath.Join(store, "abc-policy.json"), goodPolicy, 0o444)
			files := mkdir(t, filepath.Join(store, "def-home-manager-files"), 0o755)
			symlink(t, "../abc-policy.json", filepath.Join(files, "policy.json"))
			os.Chmod(files, 0o555)
			home := mkdir(t, filepath.Join(dir, "home"), 0o700)
			return symlink(t, filepath.Join(files, "policy.json"), filepath.Join(home, "policy.json")), ""
		}, nil},
		{"a group-writable store that is not sticky", true, func(t *testing.T, dir string) (string, string) {
			store := mkdir(t, filepath.Join(dir, "store"), 0o775)
			writeFile(t, filepath.Join(store, "abc-policy.json"), goodPolicy, 0o444)
			return symlink(t, filepath.Join(store, "abc-policy.json"), filepath.Join(dir, "policy.json")), store
		}, []string{"writable by others (mode 0775)"}},
		{"40 links", false, func(t *testing.T, dir string) (string, string) {
			return chain(t, dir, 40), ""
		}, nil},
		{"41 links", false, func(t *testing.T, dir string) (string, string) {
			p := chain(t, dir, 41)
			return p, p
		}, []string{"leads through more than 40 links"}},
		{"a link loop", false, func(t *testing.T, dir string) (string, string) {
			symlink(t, "b", filepath.Join(dir, "a"))
			symlink(t, "a", filepath.Join(dir, "b"))
			p := symlink(t, "a", filepath.Join(dir, "policy.json"))
			return p, p
		}, []string{"more than 40 links"}},
		{"a FIFO", false, func(t *testing.T, dir string) (string, string) {
			p := filepath.Join(dir, "policy.json")
			if err := syscall.Mkfifo(p, 0o600); err != nil {
				t.Fatal(err)
			}
			return p, p
		}, []string{"not a regular file"}},
		{"a directory", false, func(t *testing.T, dir string) (string, string) {
			return mkdir(t, filepath.Join(dir, "policy.json"), 0o700), filepath.Join(dir, "policy.json")
		}, []string{"not a regular file"}},
		{"too large", false, func(t *testing.T, dir string) (string, string) {
			p := writeFile(t, filepath.Join(dir, "policy.json"), strings.Repeat(" ", maxFileSize+1), 0o600)
			return p, p
		}, []string{"larger than"}},
		{"a file where a directory should be", false, func(t *testing.T, dir string) (string, string) {
			f := writeFile(t, filepath.Join(dir, "c"), "", 0o600)
			return filepath.Join(f, "policy.json"), f
		}, []string{"is not a directory"}},
		{"a chain whose end is missing", false, func(t *testing.T, dir string) (string, string) {
			mid := symlink(t, "gone.json", filepath.Join(dir, "mid"))
			symlink(t, "mid", filepath.Join(dir, "policy.json"))
			return filepath.Join(dir, "policy.json"), mid
		}, []string{"is a link to gone.json, which does not exist"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if tc.root && os.Geteuid() != 0 {
				t.Skipf("needs root to give a file to uid %d or make a directory root's; running as uid %d", nobody, os.Geteuid())
			}
			dir := privateDir(t)
			path, fault := tc.setup(t, dir)
			err := CheckFile(path)
			if tc.want == nil {
				if err != nil {
					t.Fatalf("CheckFile(%q) = %v, want nil", path, err)
				}
				if _, err := readPolicyFile(path); err != nil {
					t.Errorf("readPolicyFile(%q) = %v, want nil", path, err)
				}
				return
			}
			var fe *FileError
			if !errors.As(err, &fe) || fe.Path != fault {
				t.Fatalf("CheckFile(%q) = %v, want a *FileError naming %s", path, err, fault)
			}
			for _, w := range tc.want {
				w = strings.ReplaceAll(w, "OPEN", fault)
				if !strings.Contains(err.Error(), w) {
					t.Errorf("CheckFile(%q) = %v, want it to say %q", path, err, w)
				}
			}
			if errors.Is(err, fs.ErrNotExist) {
				t.Errorf("CheckFile(%q) = %v matches fs.ErrNotExist: it would read as no policy", path, err)
			}
			if _, rerr := readPolicyFile(path); rerr == nil {
				t.Errorf("readPolicyFile(%q) read a file CheckFile refuses", path)
			}
		})
	}
}

// chain makes n links, each to the next, the last to a good file, and
// returns the first.
func chain(t *testing.T, dir string, n int) string {
	t.Helper()
	writeFile(t, filepath.Join(dir, "end.json"), goodPolicy, 0o600)
	next := "end.json"
	for i := n; i >= 1; i-- {
		name := fmt.Sprintf("l%d", i)
		symlink(t, next, filepath.Join(dir, name))
		next = name
	}
	return filepath.Join(dir, next)
}

// Nothing at the path is no policy, even in a directory others may write:
// there is nothing to judge.
func TestCheckFileMissingIsNoPolicy(t *testing.T) {
	dir := privateDir(t)
	for _, path := range []string{filepath.Join(dir, "policy.json"), filepath.Join(dir, "none", "policy.json")} {
		if err := CheckFile(path); !errors.Is(err, fs.ErrNotExist) {
			t.Errorf("CheckFile(%q) = %v, want fs.ErrNotExist", path, err)
		}
		s, err := Load(path, nil)
		if err != nil || s.Current().State != StateNone {
			t.Errorf("Load(%q) = %v, want state none", path, err)
		}
	}
	// In a directory others may write, a missing file may be one another
	// user removed: fail closed, at start too.
	open := mkdir(t, filepath.Join(dir, "open"), 0o777)
	for _, path := range []string{filepath.Join(open, "policy.json"), filepath.Join(open, "none", "policy.json")} {
		var fe *FileError
		if err := CheckFile(path); !errors.As(err, &fe) {
			t.Errorf("CheckFile(%q) = %v, want a FileError naming the open directory", path, err)
		}
		if _, err := Load(path, nil); err == nil {
			t.Errorf("Load(%q) = nil error, want the open directory refused", path)
		}
	}
}

// Links are followed as the kernel follows them: relative to the real
// directory holding each one, so ".." after a linked directory leaves the
// directory it names, not the link's.
func TestWalkTakesDotDotInTheRealDirectory(t *testing.T) {
	dir := privateDir(t)
	real := mkdir(t, filepath.Join(dir, "real"), 0o700)
	sub := mkdir(t, filepath.Join(real, "sub"), 0o700)
	writeFile(t, filepath.Join(real, "p.json"), `{"default_deny": true}`, 0o600)
	writeFile(t, filepath.Join(dir, "p.json"), `{}`, 0o600)
	symlink(t, sub, filepath.Join(dir, "conf"))
	symlink(t, "../p.json", filepath.Join(sub, "policy.json"))
	path := filepath.Join(dir, "conf", "policy.json")
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	got, err := readPolicyFile(path)
	if err != nil || string(got) != string(want) {
		t.Errorf("readPolicyFile(%q) = %q, %v; want %q, as the kernel reads it", path, got, err, want)
	}
}

// The file read is the file judged: one put in its place (a file or a link)
// between the walk and the open is refused, not read.
func TestOpenRefusesAFileSwappedAfterTheWalk(t *testing.T) {
	for _, tc := range []struct {
		name string
		swap func(t *testing.T, path, other string)
	}{
		{"another file", func(t *testing.T, path, other string) {
			if err := os.Rename(other, path); err != nil {
				t.Fatal(err)
			}
		}},
		{"a link", func(t *testing.T, path, other string) {
			os.Remove(path)
			symlink(t, other, path)
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := privateDir(t)
			path := writeFile(t, filepath.Join(dir, "policy.json"), goodPolicy, 0o600)
			other := writeFile(t, filepath.Join(dir, "other.json"), "{}", 0o600)
			file, fi, err := walkPolicyPath(path)
			if err != nil || file != path {
				t.Fatalf("walkPolicyPath(%q) = %q, %v", path, file, err)
			}
			tc.swap(t, path, other)
			f, err := openResolved(file, fi, false)
			if err == nil {
				f.Close()
				t.Fatalf("openResolved(%q) after a swap = nil error, want a refusal", file)
			}
			if !strings.Contains(err.Error(), "was replaced while opx read it") {
				t.Errorf("openResolved(%q) after a swap = %v, want \"was replaced\"", file, err)
			}
		})
	}
}

// The attack of issue 21: with a policy loaded, another user makes the
// config directory writable (or finds it so) and puts a link of theirs to a
// root-owned "{}" (allow everything) in place of policy.json. The store
// fails closed, naming the directory and then the link, and loads again
// once a good file of the user's returns.
func TestStoreFailsClosedOnAForeignLink(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skipf("needs root to give a link to uid %d; running as uid %d", nobody, os.Geteuid())
	}
	dir := privateDir(t)
	conf := mkdir(t, filepath.Join(dir, "op-authd"), 0o700)
	path := writeFile(t, filepath.Join(conf, "policy.json"), goodPolicy, 0o600)
	var states []string
	s, err := Load(path, func(old, cur *Snapshot) { states = append(states, cur.State) })
	if err != nil || s.Current().State != StateLoaded {
		t.Fatalf("Load(%q) = %v, want loaded", path, err)
	}
	b := Requester{PID: 1, Path: "/b"}

	allowAll := writeFile(t, filepath.Join(dir, "allow-all.json"), "{}", 0o644)
	os.Chmod(conf, 0o777)
	os.Remove(path)
	symlink(t, allowAll, path)
	lchown(t, path, nobody)

	snap := s.Current()
	if snap.State != StateFailedClosed || snap.AllowsAny(b, Env{}) ||
		!strings.Contains(snap.Reason, conf) || !strings.Contains(snap.Reason, "run: chmod go-w "+conf) {
		t.Errorf("with the directory open and a foreign link: %+v, want failed_closed naming %s and the fix", snap, conf)
	}
	os.Chmod(conf, 0o700)
	snap = s.Current()
	if snap.State != StateFailedClosed || snap.AllowsAny(b, Env{}) ||
		!strings.Contains(snap.Reason, path) || !strings.Contains(snap.Reason, "owned by uid 65534") {
		t.Errorf("with a foreign link in a private directory: %+v, want failed_closed naming the link and its owner", snap)
	}
	if _, err := Load(path, nil); err == nil || !strings.Contains(err.Error(), "owned by uid 65534") {
		t.Errorf("Load(%q) with a foreign link = %v, want an error naming its owner", path, err)
	}

	os.Remove(path)
	writeFile(t, path, goodPolicy, 0o600)
	if snap := s.Current(); snap.State != StateLoaded || snap.Reason != "" {
		t.Errorf("after a good file returned: %+v, want loaded", snap)
	}
	if got := strings.Join(states, ","); got != "failed_closed,failed_closed,loaded" {
		t.Errorf("states told = %s, want failed_closed,failed_closed,loaded", got)
	}
}

// A link whose end is missing is a policy the user meant: it fails closed
// (at start too), and the reason names the link whose target is missing,
// not only the first of the chain.
func TestStoreDanglingChainFailsClosed(t *testing.T) {
	dir := privateDir(t)
	mid := symlink(t, filepath.Join(dir, "not-built-yet.json"), filepath.Join(dir, "mid"))
	path := symlink(t, mid, filepath.Join(dir, "policy.json"))
	s, err := Load(path, nil)
	if err != nil {
		t.Fatalf("Load(%q) = %v, want failed_closed", path, err)
	}
	snap := s.Current()
	if want := mid + " is a link to " + filepath.Join(dir, "not-built-yet.json") + ", which does not exist"; snap.State != StateFailedClosed || !strings.Contains(snap.Reason, want) {
		t.Errorf("dangling chain: %+v, want failed_closed naming %s", snap, mid)
	}
}
