//go:build unix

package e2e

import (
	"archive/zip"
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
)

// windowsZipFiles are the files make release puts in a Windows zip, in order.
var windowsZipFiles = []string{"opx.exe", "opx-authd.exe", "README.md"}

// TestReleaseWindowsZip runs make release for windows/amd64 into a temp
// DIST and opens the zip as a Windows user would: opx.exe and opx-authd.exe
// are the same program (opx tells its role from its name), with the README,
// and SHA256SUMS covers the zip. `-o build` keeps make from rewriting the
// repository's bin/opx, which a Windows zip does not use.
func TestReleaseWindowsZip(t *testing.T) {
	t.Parallel()
	if _, err := exec.LookPath("make"); err != nil {
		t.Skip("make is not installed")
	}
	dist := filepath.Join(t.TempDir(), "dist")
	out := makeInRepo(t, "-o", "build", "release", "VERSION=test", "PLATFORMS=windows/amd64", "DIST="+dist)
	name := "opx_test_windows_amd64.zip"
	zipBytes, err := os.ReadFile(filepath.Join(dist, name))
	if err != nil {
		t.Fatalf("make release: %v\n%s", err, out)
	}

	zr, err := zip.NewReader(bytes.NewReader(zipBytes), int64(len(zipBytes)))
	if err != nil {
		t.Fatalf("open %s: %v", name, err)
	}
	files := map[string][]byte{}
	var names []string
	for _, f := range zr.File {
		names = append(names, f.Name)
		files[f.Name] = readZipFile(t, f)
	}
	if !slices.Equal(names, windowsZipFiles) {
		t.Fatalf("%s holds %q, want %q", name, names, windowsZipFiles)
	}
	if !bytes.HasPrefix(files["opx.exe"], []byte("MZ")) {
		t.Errorf("opx.exe is not a Windows program: starts %q", files["opx.exe"][:min(8, len(files["opx.exe"]))])
	}
	if !bytes.Equal(files["opx.exe"], files["opx-authd.exe"]) {
		t.Errorf("opx-authd.exe (%d bytes) is not a copy of opx.exe (%d bytes)", len(files["opx-authd.exe"]), len(files["opx.exe"]))
	}
	readme, err := os.ReadFile(repoFile("README.md"))
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(files["README.md"], readme) {
		t.Errorf("the zip's README.md is not the repository's")
	}

	sums, err := os.ReadFile(filepath.Join(dist, "SHA256SUMS"))
	if err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256(zipBytes)
	if want := hex.EncodeToString(sum[:]) + "  " + name + "\n"; string(sums) != want {
		t.Errorf("SHA256SUMS = %q, want %q", sums, want)
	}
}

// TestReleasePlatforms checks, without building, that a plain make release
// builds the Windows zips beside the Unix tarballs.
func TestReleasePlatforms(t *testing.T) {
	t.Parallel()
	if _, err := exec.LookPath("make"); err != nil {
		t.Skip("make is not installed")
	}
	out := makeInRepo(t, "-n", "release", "VERSION=test", "DIST="+filepath.Join(t.TempDir(), "dist"))
	for _, want := range []string{"linux/amd64 linux/arm64 darwin/amd64 darwin/arm64 windows/amd64 windows/arm64", "-o $d/opx.exe", "../$name.zip"} {
		if !strings.Contains(out, want) {
			t.Errorf("make -n release lacks %q:\n%s", want, out)
		}
	}
}

// scoopManifest is the part of a Scoop manifest this test reads.
type scoopManifest struct {
	Version      string
	Homepage     string
	License      string
	Bin          []string
	Notes        []string
	Architecture map[string]struct{ URL, Hash string }
	Checkver     struct{ GitHub string }
	Autoupdate   struct {
		Architecture map[string]struct{ URL string }
		Hash         struct{ URL string }
	}
}

// TestScoopManifest checks packaging/scoop/opx.json against what make
// release builds: a zip per architecture named as the Makefile names it for
// VERSION=v<version> (the git tag), holding the programs in bin, and
// SHA256SUMS beside it for autoupdate's hashes.
func TestScoopManifest(t *testing.T) {
	t.Parallel()
	b, err := os.ReadFile(repoFile("packaging/scoop/opx.json"))
	if err != nil {
		t.Fatal(err)
	}
	var m scoopManifest
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatalf("packaging/scoop/opx.json: %v", err)
	}
	if m.Version == "" || m.License == "" || m.Homepage != "https://github.com/opxhq/opx" || m.Checkver.GitHub != m.Homepage {
		t.Errorf("version %q, license %q, homepage %q, checkver %q: want a version, a license and the repository twice", m.Version, m.License, m.Homepage, m.Checkver.GitHub)
	}
	for _, bin := range m.Bin {
		if !slices.Contains(windowsZipFiles, bin) || !strings.HasSuffix(bin, ".exe") {
			t.Errorf("bin %q is not a program in the zip (%q)", bin, windowsZipFiles)
		}
	}
	if !slices.Contains(m.Bin, "opx.exe") || !slices.Contains(m.Bin, "opx-authd.exe") {
		t.Errorf("bin = %q, want opx.exe and opx-authd.exe", m.Bin)
	}
	if len(m.Notes) == 0 {
		t.Errorf("no notes")
	}
	hexHash := regexp.MustCompile(`^[0-9a-f]{64}$`)
	arches := map[string]string{"64bit": "amd64", "arm64": "arm64"}
	if len(m.Architecture) != len(arches) {
		t.Errorf("architectures %v, want %v", m.Architecture, arches)
	}
	for scoopArch, goarch := range arches {
		a, ok := m.Architecture[scoopArch]
		if !ok {
			t.Errorf("no architecture %q", scoopArch)
			continue
		}
		tag := "v" + m.Version
		want := m.Homepage + "/releases/download/" + tag + "/opx_" + tag + "_windows_" + goarch + ".zip"
		if a.URL != want {
			t.Errorf("%s url = %q, want %q", scoopArch, a.URL, want)
		}
		if !hexHash.MatchString(a.Hash) {
			t.Errorf("%s hash = %q, want 64 hex digits", scoopArch, a.Hash)
		}
		if got, want := m.Autoupdate.Architecture[scoopArch].URL, strings.ReplaceAll(want, m.Version, "$version"); got != want {
			t.Errorf("autoupdate %s url = %q, want %q", scoopArch, got, want)
		}
	}
	if m.Autoupdate.Hash.URL != "$baseurl/SHA256SUMS" {
		t.Errorf("autoupdate hash url = %q, want the release's SHA256SUMS", m.Autoupdate.Hash.URL)
	}
}

// makeInRepo runs make with args in the repository and returns its output.
func makeInRepo(t *testing.T, args ...string) string {
	t.Helper()
	cmd := exec.Command("make", append([]string{"--no-print-directory"}, args...)...)
	cmd.Dir = repoFile(".")
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("make %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return string(out)
}

func readZipFile(t *testing.T, f *zip.File) []byte {
	t.Helper()
	r, err := f.Open()
	if err != nil {
		t.Fatalf("open %s in the zip: %v", f.Name, err)
	}
	defer r.Close()
	b, err := io.ReadAll(r)
	if err != nil {
		t.Fatalf("read %s in the zip: %v", f.Name, err)
	}
	return b
}
