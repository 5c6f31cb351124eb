{
  description = "opx: a local secrets broker that caches 1Password, Vault and OpenBao reads in a per-user daemon";

  inputs.nixpkgs.url = "github:NixOS/nixpkgs/nixos-unstable";

  outputs = { self, nixpkgs }:
    let
      systems = [ "x86_64-linux" "aarch64-linux" "x86_64-darwin" "aarch64-darwin" ];
      forAllSystems = f: nixpkgs.lib.genAttrs systems (system: f nixpkgs.legacyPackages.${system});
      version = "0.1.0";
    in
    {
      packages = forAllSystems (pkgs: rec {
        opx = pkgs.buildGoModule {
          pname = "opx";
          inherit version;
          src = ./.;
          # `make vendor-hash` prints this; `make test` checks it when nix-hash is installed.
          vendorHash = "sha256-z0kgrsyUVUPxZQomnfz7h7t5HvUnwhEsiMFGyXKyDT0=";
          subPackages = [ "." ];
          env.CGO_ENABLED = 0;
          ldflags = [ "-s" "-w" "-X main.version=${version}" ];
          nativeBuildInputs = [ pkgs.installShellFiles ];
          # The tests start daemons, a fake op and real Vault/OpenBao
          # servers from their own modules: run them with `make test`.
          doCheck = false;
          postInstall = ''
            ln -s opx $out/bin/opx-authd
            installShellCompletion --cmd opx \
              --bash <($out/bin/opx completion bash) \
              --zsh <($out/bin/opx completion zsh) \
              --fish <($out/bin/opx completion fish)
            $out/bin/opx --man > opx.1
            installManPage opx.1
          '';
          meta = {
            description = "Local secrets broker for 1Password, Vault and OpenBao";
            homepage = "https://github.com/opxhq/opx";
            mainProgram = "opx";
          };
        };
        default = opx;
      });

      homeManagerModules.opx = import ./packaging/nix/home-manager.nix self;
      homeManagerModules.default = self.homeManagerModules.opx;
    };
}
