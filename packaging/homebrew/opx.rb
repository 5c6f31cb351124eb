# Homebrew formula for opx, for a tap (e.g. opxhq/homebrew-tap).
# brew install opxhq/tap/opx && brew services start opx
class Opx < Formula
  desc "Local secrets broker: caches 1Password, Vault and OpenBao reads in a per-user daemon"
  homepage "https://github.com/opxhq/opx"
  url "https://github.com/opxhq/opx/archive/refs/tags/v0.1.0.tar.gz"
  # Set by the release: shasum -a 256 of the tarball above.
  sha256 "0000000000000000000000000000000000000000000000000000000000000000"
  head "https://github.com/opxhq/opx.git", branch: "main"

  depends_on "go" => :build

  def install
    ENV["CGO_ENABLED"] = "0"
    system "go", "build", *std_go_args(ldflags: "-s -w -X main.version=#{version}"), "."
    bin.install_symlink "opx" => "opx-authd"
    generate_completions_from_executable(bin/"opx", "completion")
    (man1/"opx.1").write Utils.safe_popen_read(bin/"opx", "--man")
  end

  service do
    run [opt_bin/"opx", "daemon"]
    keep_alive successful_exit: false
    environment_variables OPX_SERVICE: "launchd:homebrew.mxcl.opx"
    log_path var/"log/opx.log"
    error_log_path var/"log/opx.log"
  end

  test do
    assert_match "opx #{version}", shell_output("#{bin}/opx version")
    ENV["OPX_SOCKET_PATH"] = testpath/"opx.sock"
    ENV["OP_AUTHD_BACKEND"] = "fake"
    assert_match(/^fake_[0-9a-f]{16}$/, shell_output("#{bin}/opx read op://a/b/c").strip)
  end
end
