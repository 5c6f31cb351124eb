package daemon

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/opxhq/opx/internal/testdir"
)

// writeCert writes a self-signed pair valid until notAfter.
func writeCert(t *testing.T, certFile, keyFile string, notAfter time.Time) {
	t.Helper()
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: ServerName}, DNSNames: []string{ServerName},
		NotBefore: notAfter.Add(-time.Hour), NotAfter: notAfter}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	kd, _ := x509.MarshalECPrivateKey(key)
	os.WriteFile(certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600)
	os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kd}), 0o600)
}

func TestCertificateIsKeptOrRenewed(t *testing.T) {
	dir := testdir.New(t)
	certFile, keyFile := filepath.Join(dir, "tls.crt"), filepath.Join(dir, "tls.key")

	first, err := loadOrCreateCert(certFile, keyFile)
	if err != nil {
		t.Fatal(err)
	}
	if first.leaf.PublicKeyAlgorithm != x509.ECDSA || time.Until(first.leaf.NotAfter) < 300*24*time.Hour {
		t.Fatalf("new certificate: %v until %v", first.leaf.PublicKeyAlgorithm, first.leaf.NotAfter)
	}
	again, err := loadOrCreateCert(certFile, keyFile)
	if err != nil || string(again.leaf.Raw) != string(first.leaf.Raw) {
		t.Fatalf("a valid certificate was replaced (%v)", err)
	}

	for name, notAfter := range map[string]time.Time{
		"expired":       time.Now().Add(-time.Hour),
		"expiring soon": time.Now().Add(24 * time.Hour),
	} {
		writeCert(t, certFile, keyFile, notAfter)
		cs, err := loadOrCreateCert(certFile, keyFile)
		if err != nil {
			t.Fatal(err)
		}
		if time.Until(cs.leaf.NotAfter) < 300*24*time.Hour {
			t.Errorf("%s certificate was not renewed: valid until %v", name, cs.leaf.NotAfter)
		}
		onDisk, _ := os.ReadFile(certFile)
		block, _ := pem.Decode(onDisk)
		if block == nil || string(block.Bytes) != string(cs.leaf.Raw) {
			t.Errorf("%s: the renewed certificate is not the one on disk, where the client pins it", name)
		}
	}

	os.WriteFile(certFile, []byte("not a certificate"), 0o600)
	if cs, err := loadOrCreateCert(certFile, keyFile); err != nil || cs.leaf == nil {
		t.Errorf("a corrupt certificate was not replaced: %v", err)
	}
}
