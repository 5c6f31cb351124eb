package backend

import (
	"fmt"
	"io"
	"os"
	"os/exec"
	"strings"
	"testing"

	"github.com/opxhq/opx/api"
	"github.com/opxhq/opx/self"
)

// childEnv makes the test binary a program the tests start: "printop"
// prints what op would get (its arguments, the identity variables, its
// standard input); the others are runChild's, per system.
const childEnv = "OPX_BACKEND_TEST_CHILD"

func TestMain(m *testing.M) {
	if self.Name(os.Args[0]) == LauncherName {
		os.Exit(RunLauncher(os.Args))
	}
	switch mode := os.Getenv(childEnv); mode {
	case "":
		os.Exit(m.Run())
	case "printop":
		in, _ := io.ReadAll(os.Stdin)
		fmt.Printf("args=%q\n", os.Args[1:])
		for _, v := range api.OPIdentityEnvVars {
			fmt.Printf("%s=%q\n", v, os.Getenv(v))
		}
		fmt.Printf("stdin=%q\n", in)
		os.Exit(0)
	default:
		runChild(mode)
	}
}

// TestLauncherGivesOPTheIdentity: op started through the launcher gets
// the batch's identity and no inherited one, its own arguments, and its
// standard input whole after the variables.
func TestLauncherGivesOPTheIdentity(t *testing.T) {
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		id   OPIdentity
		want []string
	}{
		{NewOPIdentity(&api.OPIdentity{ServiceAccountToken: api.Secret("ops_batch")}),
			[]string{`OP_SERVICE_ACCOUNT_TOKEN="ops_batch"`, `OP_CONNECT_HOST=""`, `OP_CONNECT_TOKEN=""`}},
		{NewOPIdentity(&api.OPIdentity{ConnectHost: "http://127.0.0.1:1", ConnectToken: api.Secret("ctok")}),
			[]string{`OP_SERVICE_ACCOUNT_TOKEN=""`, `OP_CONNECT_HOST="http://127.0.0.1:1"`, `OP_CONNECT_TOKEN="ctok"`}},
	} {
		cmd := exec.Command(exe, "inject", "--account=my")
		cmd.Env = append(WithoutIdentityEnv(os.Environ()), childEnv+"=printop", "OP_SERVICE_ACCOUNT_TOKEN=ops_inherited", "OP_CONNECT_HOST=http://inherited")
		// The launcher takes the inherited ones out before it adds the
		// batch's: as the daemon's environment, they would be there.
		done, err := launchCommand(cmd, exe, tc.id, []byte("{{ op://v/i/f }}\n"))
		if err != nil {
			t.Fatal(err)
		}
		out, err := cmd.Output()
		done()
		if err != nil {
			t.Fatalf("%s: %v\n%s", tc.id.Label(), err, out)
		}
		got := string(out)
		for _, w := range append(tc.want, `args=["inject" "--account=my"]`, `stdin="{{ op://v/i/f }}\n"`) {
			if !strings.Contains(got, w+"\n") {
				t.Errorf("%s: op got\n%s\nwant a line %s", tc.id.Label(), got, w)
			}
		}
	}
}
