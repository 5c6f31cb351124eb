package api

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestParseRefValid(t *testing.T) {
	for _, tc := range []struct {
		raw  string
		want Ref
	}{
		{"op://Private/db/password", Ref{Scheme: "op", Vault: "Private", Item: "db", Field: "password"}},
		{"op://Work Vault/My Item/Section 1/api key", Ref{Scheme: "op", Vault: "Work Vault", Item: "My Item", Section: "Section 1", Field: "api key"}},
		{"op://v/i/one-time password?attribute=otp", Ref{Scheme: "op", Vault: "v", Item: "i", Field: "one-time password", Attribute: "otp"}},
		{"op://v/ssh/private key?ssh-format=openssh", Ref{Scheme: "op", Vault: "v", Item: "ssh", Field: "private key", SSHFormat: "openssh"}},
		{"vault://secret/app#key", Ref{Scheme: "vault", Path: "secret/app", KeyField: "key"}},
		{"vault://secret/data/app?version=3#key", Ref{Scheme: "vault", Path: "secret/data/app", Version: 3, KeyField: "key"}},
		{"bao://database/config", Ref{Scheme: "bao", Path: "database/config"}},
		{"vault://secret/app?response=kv&version=2", Ref{Scheme: "vault", Path: "secret/app", Version: 2, Response: ResponseKV}},
		{"bao://database/creds/app?response=logical", Ref{Scheme: "bao", Path: "database/creds/app", Response: ResponseLogical}},
		{"bao://pki/cert/ca/", Ref{Scheme: "bao", Path: "pki/cert/ca"}},
	} {
		t.Run(tc.raw, func(t *testing.T) {
			got, err := ParseRef(tc.raw)
			if err != nil {
				t.Fatalf("ParseRef(%q) error: %v", tc.raw, err)
			}
			tc.want.Raw = tc.raw
			if got != tc.want {
				t.Errorf("ParseRef(%q) = %+v, want %+v", tc.raw, got, tc.want)
			}
		})
	}
}

func TestParseRefInvalid(t *testing.T) {
	for _, tc := range []struct {
		raw, msg string
	}{
		{"", "empty reference"},
		{"-op://v/i/f", "may not start with '-'"},
		{"--account=evil", "may not start with '-'"},
		{"op://v/i", "want op://vault/item/[section/]field"},
		{"op://v/i/s/f/x", "want op://vault/item/[section/]field"},
		{"op://v//f", "empty vault"},
		{"op://v/i/f?attribute=bogus", "unknown attribute"},
		{"op://v/i/f?ssh-format=pem", "unknown ssh-format"},
		{"op://v/i/f?foo=bar", "unknown query parameter"},
		{"op://v/i/f\nx", "control character"},
		{"op://v/i/f\x00", "control character"},
		{"http://example/x", "unknown scheme"},
		{"foo://x", "unknown scheme"},
		{"plain text", "not a secret reference"},
		{"vault://", "empty path"},
		{"vault:///secret/x", "must not start with '/'"},
		{"vault://v1/secret/x", "without /v1/"},
		{"vault://secret/../sys/x", ". or .."},
		{"vault://secret/x#", "empty field"},
		{"vault://secret/x?version=abc", "whole number"},
		{"vault://secret/x?version=-1", "whole number"},
		{"vault://secret/x?ver=1", "unknown query parameter"},
		{"vault://secret/x?version=1&version=2", "given 2 times"},
		{"vault://secret/x?response=json", "kv or logical"},
		{"vault://secret/x?response=kv#password", "takes no #field"},
		{"vault://secret/x?response=logical&version=3", "not to ?response=logical"},
		{"op://" + strings.Repeat("a", MaxRefLen), "the limit is"},
		{"op://v/i/\xff", "not valid UTF-8"},
		{"vault://auth/token/lookup-self#id", "vault read auth/token/lookup-self"},
		{"bao://auth/token/lookup-self?response=logical", "bao read auth/token/lookup-self"},
		{"vault://cubbyhole/x#k", "cubbyhole/ is a mount the server reserves"},
		{"vault://identity/oidc/token/r#token", "identity/ is a mount"},
		{"bao://sys/wrapping/lookup", "sys/ is a mount"},
		{"vault://Sys/wrapping/lookup", "Sys/ is a mount"},
		{"vault://sys#x", "sys/ is a mount"},
	} {
		t.Run(tc.raw, func(t *testing.T) {
			_, err := ParseRef(tc.raw)
			var ae *Error
			if !errors.As(err, &ae) || ae.Code != CodeBadRequest {
				t.Fatalf("ParseRef(%q) = %v, want a bad_request error", tc.raw, err)
			}
			if !strings.Contains(ae.Message, tc.msg) {
				t.Errorf("ParseRef(%q) message %q, want it to contain %q", tc.raw, ae.Message, tc.msg)
			}
			if len(ae.Message) > 400 {
				t.Errorf("message is %d bytes; a hostile ref must be cut", len(ae.Message))
			}
		})
	}
}

func FuzzParseRef(f *testing.F) {
	seeds, _ := filepath.Glob(filepath.Join("..", "testdata", "refs", "*.txt"))
	for _, file := range seeds {
		data, err := os.ReadFile(file)
		if err != nil {
			f.Fatal(err)
		}
		for _, line := range strings.Split(string(data), "\n") {
			f.Add(line)
		}
	}
	f.Fuzz(func(t *testing.T, raw string) {
		ref, err := ParseRef(raw)
		if err != nil {
			var ae *Error
			if !errors.As(err, &ae) || ae.Code != CodeBadRequest {
				t.Fatalf("ParseRef(%q) error %v is not a bad_request *Error", raw, err)
			}
			return
		}
		if ref.Raw != raw || strings.HasPrefix(raw, "-") {
			t.Fatalf("ParseRef(%q) accepted %+v", raw, ref)
		}
		switch ref.Scheme {
		case SchemeOP:
			if ref.Vault == "" || ref.Item == "" || ref.Field == "" {
				t.Fatalf("op ref %q parsed with empty parts: %+v", raw, ref)
			}
		case SchemeVault, SchemeBao:
			if ref.Path == "" || strings.HasPrefix(ref.Path, "/") || ref.Version < 0 {
				t.Fatalf("%s ref %q parsed badly: %+v", ref.Scheme, raw, ref)
			}
		default:
			t.Fatalf("ParseRef(%q) scheme %q", raw, ref.Scheme)
		}
	})
}
