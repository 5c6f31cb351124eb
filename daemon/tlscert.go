package daemon

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"
	"os"
	"sync"
	"time"

	"github.com/opxhq/opx/xdg"
)

// ServerName is the name in the daemon's certificate; the client verifies it.
const ServerName = "opx-authd"

const (
	certLifetime = 365 * 24 * time.Hour
	// certRenewBefore is how long before expiry the certificate is replaced.
	certRenewBefore = 7 * 24 * time.Hour
)

// certStore serves the daemon's self-signed certificate and replaces it (on
// disk too, where the client reads it) before it expires.
type certStore struct {
	certFile, keyFile string

	mu   sync.Mutex
	cert *tls.Certificate
	leaf *x509.Certificate
}

// currentPEM is the certificate as the client reads it from certFile.
func (cs *certStore) currentPEM() []byte {
	cs.mu.Lock()
	defer cs.mu.Unlock()
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: cs.leaf.Raw})
}

// loadOrCreateCert loads the certificate pair, making a new one when there
// is none, it does not parse, or it expires within certRenewBefore.
func loadOrCreateCert(certFile, keyFile string) (*certStore, error) {
	cs := &certStore{certFile: certFile, keyFile: keyFile}
	if err := cs.load(); err == nil && !cs.expiring(time.Now()) {
		return cs, nil
	}
	if err := cs.regenerate(); err != nil {
		return nil, err
	}
	return cs, nil
}

func (cs *certStore) load() error {
	keyPEM, err := xdg.ReadPrivateFile(cs.keyFile)
	if err != nil {
		return err
	}
	certPEM, err := os.ReadFile(cs.certFile)
	if err != nil {
		return err
	}
	pair, err := tls.X509KeyPair(certPEM, keyPEM)
	clear(keyPEM)
	if err != nil {
		return err
	}
	if pair.Leaf == nil {
		return errors.New("certificate has no leaf")
	}
	cs.cert, cs.leaf = &pair, pair.Leaf
	return nil
}

func (cs *certStore) expiring(now time.Time) bool {
	return cs.leaf == nil || now.Add(certRenewBefore).After(cs.leaf.NotAfter)
}

// regenerate makes a new ECDSA P-256 key and self-signed certificate and
// writes both atomically (key first: a client never pins a certificate
// whose key is not yet in place).
func (cs *certStore) regenerate() error {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return fmt.Errorf("generate TLS key: %w", err)
	}
	serial, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 128))
	if err != nil {
		return fmt.Errorf("generate serial: %w", err)
	}
	now := time.Now()
	tmpl := &x509.Certificate{
		SerialNumber:          serial,
		Subject:               pkix.Name{CommonName: ServerName},
		DNSNames:              []string{ServerName},
		NotBefore:             now.Add(-time.Minute),
		NotAfter:              now.Add(certLifetime),
		KeyUsage:              x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		BasicConstraintsValid: true,
		IsCA:                  true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return fmt.Errorf("create certificate: %w", err)
	}
	keyDER, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		return fmt.Errorf("encode TLS key: %w", err)
	}
	keyPEM := pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: keyDER})
	certPEM := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})
	defer clear(keyPEM)
	defer clear(keyDER)
	if err := xdg.WriteFileAtomic(cs.keyFile, keyPEM, 0o600); err != nil {
		return fmt.Errorf("write TLS key: %w", err)
	}
	if err := xdg.WriteFileAtomic(cs.certFile, certPEM, 0o600); err != nil {
		return fmt.Errorf("write TLS certificate: %w", err)
	}
	leaf, err := x509.ParseCertificate(der)
	if err != nil {
		return err
	}
	cs.cert = &tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key, Leaf: leaf}
	cs.leaf = leaf
	return nil
}

// getCertificate is the tls.Config hook: it renews the certificate when it
// is about to expire in a daemon that has run that long.
func (cs *certStore) getCertificate(*tls.ClientHelloInfo) (*tls.Certificate, error) {
	cs.mu.Lock()
	defer cs.mu.Unlock()
	if cs.expiring(time.Now()) {
		if err := cs.regenerate(); err != nil {
			return nil, err
		}
	}
	return cs.cert, nil
}

// serverTLSConfig returns the daemon's TLS 1.3-only configuration.
func (cs *certStore) serverTLSConfig() *tls.Config {
	return &tls.Config{
		MinVersion:     tls.VersionTLS13,
		GetCertificate: cs.getCertificate,
		NextProtos:     []string{"http/1.1"},
	}
}
