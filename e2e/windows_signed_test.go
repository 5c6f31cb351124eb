//go:build linux

package e2e

import (
	"bytes"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"encoding/pem"
	"math/big"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestWindowsRequireSigned: a require_signed rule allows a program with
// an intact Authenticode signature, and not the same program with a byte
// of its signed image changed (also when the change is written over the
// file the daemon verified before), nor an unsigned copy. The program is
// signed here with osslsigncode and a certificate made for the test, whose
// root the test trusts for wine's user while it runs, as Windows needs.
//
// Wine's WinVerifyTrust does not check the chain: it accepted a signature
// whose root nobody trusts (tried while this test was written). That a
// root must be trusted is Windows' promise, not shown here.
func TestWindowsRequireSigned(t *testing.T) {
	t.Parallel()
	signer, err := exec.LookPath("osslsigncode")
	if err != nil {
		t.Skip("osslsigncode (a Debian package, which .ci/run installs) is not installed: it signs the program this test runs")
	}
	w, e := winFakeEnv(t)
	const ref = "op://a/b/c"

	rootDER, chainPEM, keyPEM := codeSigningChain(t)
	for name, data := range map[string][]byte{"root.der": rootDER, "chain.pem": chainPEM, "key.pem": keyPEM} {
		if err := os.WriteFile(filepath.Join(e.Dir, name), data, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	signed, tampered, unsigned := filepath.Join(e.Dir, "signed.exe"), filepath.Join(e.Dir, "tampered.exe"), filepath.Join(e.Dir, "unsigned.exe")
	out, err := exec.Command(signer, "sign", "-certs", filepath.Join(e.Dir, "chain.pem"), "-key", filepath.Join(e.Dir, "key.pem"),
		"-h", "sha256", "-n", "opx test", "-in", w.PeerHelper, "-out", signed).CombinedOutput()
	if err != nil {
		t.Fatalf("osslsigncode sign: %v\n%s", err, out)
	}
	data, err := os.ReadFile(signed)
	if err != nil {
		t.Fatal(err)
	}
	// A letter of the DOS stub's message, which the signature covers and
	// the program never runs.
	const at = 0x50
	if !bytes.HasPrefix(data[at-2:], []byte("This program")) {
		t.Fatalf("no DOS stub message at %#x in %s", at-2, signed)
	}
	bad := bytes.Clone(data)
	bad[at] = 'I'
	orig, err := os.ReadFile(w.PeerHelper)
	if err != nil {
		t.Fatal(err)
	}
	for p, b := range map[string][]byte{tampered: bad, unsigned: orig} {
		if err := os.WriteFile(p, b, 0o755); err != nil {
			t.Fatal(err)
		}
	}

	// The root is trusted by wine's user for the test's time; the other
	// tests sharing the prefix trust no certificate of their own.
	root := w.WinPath(filepath.Join(e.Dir, "root.der"))
	if r := e.Run(w.PeerHelper, nil, "trust", root); r.Code != 0 {
		t.Fatalf("peerhelper trust %s = %+v", root, r)
	}
	t.Cleanup(func() {
		if r := e.Run(w.PeerHelper, nil, "distrust", root); r.Code != 0 {
			t.Errorf("peerhelper distrust %s = %+v", root, r)
		}
	})

	if err := os.MkdirAll(e.ConfigDir, 0o700); err != nil {
		t.Fatal(err)
	}
	policy := `{"default_deny": true, "allow": [`
	for i, p := range []string{signed, tampered, unsigned} {
		if i > 0 {
			policy += ","
		}
		q, _ := json.Marshal(w.WinPath(p))
		policy += `{"path": ` + string(q) + `, "require_signed": true, "refs": ["*"]}`
	}
	policy += `]}`
	if err := os.WriteFile(filepath.Join(e.ConfigDir, "policy.json"), []byte(policy), 0o600); err != nil {
		t.Fatal(err)
	}
	e.Helper = signed // the cleanup's opx.exe stop must be allowed

	if r := e.Run(signed, nil, "opx", "read", ref); r.Code != 0 || r.Stdout != fv(ref)+"\n" {
		t.Fatalf("the signed program's opx.exe read = %+v, want %q", r, fv(ref))
	}
	for name, p := range map[string]string{"tampered": tampered, "unsigned": unsigned} {
		r := e.Run(p, nil, "opx", "read", ref)
		if r.Code != 1 || r.Stdout != "" || !strings.Contains(r.Stderr, "forbidden") {
			t.Errorf("the %s program's opx.exe read = %+v; want exit 1, forbidden", name, r)
		}
	}
	// The signed file, verified and remembered, is overwritten in place
	// with the changed bytes: same file, same size, new write time.
	if err := os.WriteFile(signed, bad, 0o755); err != nil {
		t.Fatal(err)
	}
	if r := e.Run(signed, nil, "opx", "read", ref); r.Code != 1 || r.Stdout != "" || !strings.Contains(r.Stderr, "forbidden") {
		t.Errorf("the signed program, overwritten with a changed copy: opx.exe read = %+v; want exit 1, forbidden", r)
	}
	if err := os.WriteFile(signed, data, 0o755); err != nil {
		t.Fatal(err)
	}
	if r := e.Run(signed, nil, "opx", "stop"); r.Code != 0 {
		t.Errorf("the signed program's opx.exe stop = %+v", r)
	}
}

// codeSigningChain makes a root certificate (DER) and a code-signing
// certificate it issued, returned as PEM with the root after it, and the
// latter's RSA key (PEM).
func codeSigningChain(t *testing.T) (rootDER, chainPEM, keyPEM []byte) {
	t.Helper()
	rootKey, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	leafKey, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	rootTmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "opx test root " + t.Name()},
		NotBefore: now.Add(-time.Hour), NotAfter: now.Add(24 * time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign | x509.KeyUsageCRLSign,
	}
	rootDER, err = x509.CreateCertificate(rand.Reader, rootTmpl, rootTmpl, &rootKey.PublicKey, rootKey)
	if err != nil {
		t.Fatal(err)
	}
	root, err := x509.ParseCertificate(rootDER)
	if err != nil {
		t.Fatal(err)
	}
	leafTmpl := &x509.Certificate{
		SerialNumber: big.NewInt(2), Subject: pkix.Name{CommonName: "opx test signer"},
		NotBefore: now.Add(-time.Hour), NotAfter: now.Add(24 * time.Hour),
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageCodeSigning},
	}
	leafDER, err := x509.CreateCertificate(rand.Reader, leafTmpl, root, &leafKey.PublicKey, rootKey)
	if err != nil {
		t.Fatal(err)
	}
	chainPEM = append(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: leafDER}), pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: rootDER})...)
	keyPEM = pem.EncodeToMemory(&pem.Block{Type: "RSA PRIVATE KEY", Bytes: x509.MarshalPKCS1PrivateKey(leafKey)})
	return rootDER, chainPEM, keyPEM
}
