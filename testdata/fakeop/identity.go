package main

import (
	"crypto/sha256"
	"encoding/base32"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
)

// authKind is how op authenticates.
type authKind int

const (
	desktop        authKind = iota // accounts signed in with op signin (FAKEOP_STATE files)
	serviceAccount                 // OP_SERVICE_ACCOUNT_TOKEN
	connect                        // OP_CONNECT_HOST and OP_CONNECT_TOKEN
)

// identity is who op acts as, chosen from the environment in op's
// documented order: a Connect server before a service account before the
// accounts signed in interactively. It holds a digest of the token, never
// the token: the fake writes only the digest's first 8 hex digits (id) to
// its log and state files.
type identity struct {
	kind authKind
	sum  [sha256.Size]byte // SHA-256 of the token, or of host "\n" token for Connect
	// problem is what op says before it does anything with this identity
	// (half a Connect configuration, a token that does not parse); "" if none.
	problem string
}

func identityFromEnv() identity {
	host, ctoken := os.Getenv("OP_CONNECT_HOST"), os.Getenv("OP_CONNECT_TOKEN")
	if host != "" || ctoken != "" {
		id := identity{kind: connect, sum: sha256.Sum256([]byte(host + "\n" + ctoken))}
		switch {
		case host == "":
			id.problem = "OP_CONNECT_TOKEN is set but OP_CONNECT_HOST is not: set both to use a Connect server"
		case ctoken == "":
			id.problem = "OP_CONNECT_HOST is set but OP_CONNECT_TOKEN is not: set both to use a Connect server"
		}
		return id
	}
	token := os.Getenv("OP_SERVICE_ACCOUNT_TOKEN")
	if token == "" {
		return identity{}
	}
	id := identity{kind: serviceAccount, sum: sha256.Sum256([]byte(token))}
	if !wellFormed(token) {
		id.problem = "error initializing client: Validation: (failed to session.DecodeSACredentials), Server: (failed to DecodeSACredentials), failed to parseToken, format is invalid"
	}
	return id
}

// wellFormed reports whether token looks like a service account token:
// "ops_" and then base64 text (real tokens encode a JSON document).
func wellFormed(token string) bool {
	body, ok := strings.CutPrefix(token, "ops_")
	if !ok || body == "" {
		return false
	}
	for _, c := range body {
		if !(c >= 'A' && c <= 'Z' || c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || strings.ContainsRune("+/=-_", c)) {
			return false
		}
	}
	return true
}

// id is the first 8 hex digits of the token's digest.
func (id identity) id() string { return hex.EncodeToString(id.sum[:4]) }

// label names the identity in FAKEOP_LOG lines: "sa=<id>", "connect=<id>",
// or "" for a desktop account.
func (id identity) label() string {
	switch id.kind {
	case serviceAccount:
		return "sa=" + id.id()
	case connect:
		return "connect=" + id.id()
	}
	return ""
}

// mark is a secret value as this identity reads it: the fixture's value for
// a desktop account, the value + "~" + id for a token, so that a test can
// tell which token a value was read with. An empty value stays empty.
func (id identity) mark(v string) string {
	if id.kind == desktop || v == "" {
		return v
	}
	return v + "~" + id.id()
}

// supports reports whether op has cmd for this identity. Under a service
// account op does not offer what 1Password's "Use service accounts with
// 1Password CLI" lists as unsupported (op answers `unknown command "user"
// for "op"`, as for any command it lacks); the fake has none of those
// commands anyway, and refuses signin and signout the same way. With a
// Connect server op documents read, inject and run.
func (id identity) supports(cmd string) bool {
	switch id.kind {
	case serviceAccount:
		switch cmd {
		case "read", "inject", "run", "whoami", "item", "service-account":
			return true
		}
		return false
	case connect:
		switch cmd {
		case "read", "inject", "run":
			return true
		}
		return false
	}
	return true
}

// revoked is 1Password's answer to a deleted service account: the test
// revokes one with a file "revoked-<id>" in FAKEOP_STATE.
func (id identity) revoked() error {
	if id.kind != serviceAccount {
		return nil
	}
	if _, err := os.Stat(filepath.Join(stateDir(), "revoked-"+id.id())); err != nil {
		return nil
	}
	return fail("(403) Forbidden (Service Account Deleted): The Service Account used in this integration has been deleted.")
}

// uuid derives a 26-character 1Password-style ID from the token's digest,
// different for each purpose.
func (id identity) uuid(purpose string) string {
	sum := sha256.Sum256(append([]byte(purpose+"\n"), id.sum[:]...))
	return base32.StdEncoding.EncodeToString(sum[:])[:26]
}

// whoamiServiceAccount prints what op whoami prints for a service account:
// the account's URL, the integration and "SERVICE_ACCOUNT"; with --format
// json, the URL twice (as "url" and "URL"), the user and account IDs and
// the type twice ("user_type", "ServiceAccountType").
func whoamiServiceAccount(id identity, a *account, format string, stdout io.Writer) error {
	url := "https://" + a.URL
	if format == "json" {
		b, _ := json.MarshalIndent(struct {
			URL      string `json:"url"`
			URLUpper string `json:"URL"`
			UserUUID string `json:"user_uuid"`
			Account  string `json:"account_uuid"`
			UserType string `json:"user_type"`
			SAType   string `json:"ServiceAccountType"`
		}{url, url, id.uuid("user"), a.AccountID, "SERVICE_ACCOUNT", "SERVICE_ACCOUNT"}, "", "  ")
		_, err := fmt.Fprintf(stdout, "%s\n", b)
		return err
	}
	_, err := fmt.Fprintf(stdout, "URL:               %s\nIntegration ID:    %s\nUser Type:         SERVICE_ACCOUNT\n", url, id.uuid("integration"))
	return err
}
