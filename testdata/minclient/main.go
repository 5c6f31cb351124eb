// Command minclient is the least a client of the opx daemon can do for one
// cached read with TLS kept: read the token and certificate, connect, make
// the same pinned TLS 1.3 handshake as opx, send POST /v1/read and print the
// answer's body. `make bench` times it next to `opx read` as the limit of
// what opx's own client could reach. It takes the socket, token and
// certificate paths from OPX_SOCKET_PATH, OPX_TOKEN_FILE, OPX_CERT_FILE, and
// the ref as its last argument.
package main

import (
	"bufio"
	"bytes"
	"crypto/tls"
	"encoding/pem"
	"errors"
	"io"
	"net"
	"net/http"
	"os"
	"strings"
)

func main() {
	if err := run(); err != nil {
		os.Stderr.WriteString("minclient: " + err.Error() + "\n")
		os.Exit(1)
	}
}

func run() error {
	token, err := os.ReadFile(os.Getenv("OPX_TOKEN_FILE"))
	if err != nil {
		return err
	}
	certPEM, err := os.ReadFile(os.Getenv("OPX_CERT_FILE"))
	if err != nil {
		return err
	}
	block, _ := pem.Decode(certPEM)
	if block == nil {
		return errors.New("no certificate")
	}
	conn, err := net.Dial("unix", os.Getenv("OPX_SOCKET_PATH"))
	if err != nil {
		return err
	}
	tc := tls.Client(conn, &tls.Config{
		MinVersion:         tls.VersionTLS13,
		ServerName:         "opx-authd",
		InsecureSkipVerify: true,
		VerifyConnection: func(cs tls.ConnectionState) error {
			if len(cs.PeerCertificates) == 0 || !bytes.Equal(cs.PeerCertificates[0].Raw, block.Bytes) {
				return errors.New("not the pinned certificate")
			}
			return nil
		},
		NextProtos:       []string{"http/1.1"},
		CurvePreferences: []tls.CurveID{tls.X25519},
	})
	defer tc.Close()
	body := `{"ref":"` + os.Args[len(os.Args)-1] + `"}`
	req, err := http.NewRequest(http.MethodPost, "https://opx-authd/v1/read", strings.NewReader(body))
	if err != nil {
		return err
	}
	req.Header.Set("Authorization", "Bearer "+strings.TrimSpace(string(token)))
	req.Header.Set("Content-Type", "application/json")
	if err := req.Write(tc); err != nil {
		return err
	}
	resp, err := http.ReadResponse(bufio.NewReader(tc), req)
	if err != nil {
		return err
	}
	out, err := io.ReadAll(resp.Body)
	if err != nil {
		return err
	}
	if resp.StatusCode != http.StatusOK {
		return errors.New(resp.Status)
	}
	_, err = os.Stdout.Write(out)
	return err
}
