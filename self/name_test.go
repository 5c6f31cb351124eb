package self

import (
	"runtime"
	"testing"
)

func TestName(t *testing.T) {
	tests := []struct{ arg0, unix, windows string }{
		{"op", "op", "op"},
		{"/usr/local/bin/vault", "vault", "vault"},
		{"opx-authd", "opx-authd", "opx-authd"},
		{"op.exe", "op.exe", "op"},
		{`C:\Users\me\bin\OP.EXE`, `C:\Users\me\bin\OP.EXE`, "op"},
		{`C:\bin\opx-authd.exe`, `C:\bin\opx-authd.exe`, "opx-authd"},
		{"bao.Exe", "bao.Exe", "bao"},
		{"vault.exe.bak", "vault.exe.bak", "vault.exe.bak"},
	}
	for _, tt := range tests {
		want := tt.unix
		if runtime.GOOS == "windows" {
			want = tt.windows
		}
		if got := Name(tt.arg0); got != want {
			t.Errorf("Name(%q) = %q, want %q", tt.arg0, got, want)
		}
	}
}
