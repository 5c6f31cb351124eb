//go:build unix

package e2e

import (
	"os/exec"
	"testing"

	"github.com/opxhq/opx/e2e/harness"
)

// The fake op's values for a service account and a Connect server are the
// ones the harness helpers compute, and its log names each token as
// OpCallsAs expects: tests of token callers build on both.
func TestOPFakeTokensAgreeWithTheHarness(t *testing.T) {
	t.Parallel()
	e := newOPEnv(t)
	const sa, host, ctoken = "ops_eyJhIjoiZTJlIn0", "http://connect.test:8080", "connect-token"
	read := func(extra ...string) string {
		t.Helper()
		cmd := exec.Command(harness.Bins().FakeOp, "read", "-n", "op://Private/db/password")
		cmd.Env = e.Environ(extra...)
		out, err := cmd.Output()
		if err != nil {
			t.Fatalf("op read with %q: %v", extra, err)
		}
		return string(out)
	}
	if got, want := read("OP_SERVICE_ACCOUNT_TOKEN="+sa), harness.FakeOPValueFor(sa, "s3cr3t-db-pass"); got != want {
		t.Errorf("service account read %q, FakeOPValueFor says %q", got, want)
	}
	if got, want := read("OP_CONNECT_HOST="+host, "OP_CONNECT_TOKEN="+ctoken), harness.FakeOPConnectValueFor(host, ctoken, "s3cr3t-db-pass"); got != want {
		t.Errorf("Connect read %q, FakeOPConnectValueFor says %q", got, want)
	}
	if n := len(e.OpCallsAs("sa=" + harness.FakeOPTokenID(sa))); n != 1 {
		t.Errorf("OpCallsAs(the service account) = %d calls, want 1", n)
	}
	if n := len(e.OpCallsAs("connect=" + harness.FakeOPTokenID(host+"\n"+ctoken))); n != 1 {
		t.Errorf("OpCallsAs(the Connect server) = %d calls, want 1", n)
	}
	if n, all := len(e.OpCallsAs("")), len(e.OpCalls()); n != 0 || all != 2 {
		t.Errorf("desktop calls %d, all calls %d; want 0 and 2", n, all)
	}
}
