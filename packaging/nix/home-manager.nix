# Home Manager module: services.opx-authd runs `opx daemon` as a systemd user
# service on Linux and a launchd agent on macOS.
self:
{ config, lib, pkgs, ... }:
let
  cfg = config.services.opx-authd;
  exe = "${cfg.package}/bin/opx";
  daemonArgs = [
    "daemon"
    "--backend=${cfg.backend}"
    "--session-timeout=${toString cfg.sessionTimeout}"
    "--audit-log-retention-days=${toString cfg.auditLogRetentionDays}"
  ] ++ lib.optional cfg.enableAuditLog "--enable-audit-log";
  # launchd has no environment files: a shell reads it, then execs opx.
  darwinArgs =
    if cfg.environmentFile == null then [ exe ] ++ daemonArgs
    else [ "/bin/sh" "-c" ''set -a; . "$0"; set +a; exec "$@"'' (toString cfg.environmentFile) exe ] ++ daemonArgs;
in
{
  options.services.opx-authd = {
    enable = lib.mkEnableOption "the opx secrets broker daemon (opx daemon)";

    package = lib.mkOption {
      type = lib.types.package;
      default = self.packages.${pkgs.stdenv.hostPlatform.system}.opx;
      defaultText = lib.literalExpression "opx.packages.\${system}.opx";
      description = "The opx package.";
    };

    backend = lib.mkOption {
      type = lib.types.enum [ "opcli" "vault" "bao" "multi" "fake" ];
      default = "opcli";
      description = "Secrets backend (--backend).";
    };

    enableAuditLog = lib.mkOption {
      type = lib.types.bool;
      default = false;
      description = "Write the audit log (--enable-audit-log).";
    };

    sessionTimeout = lib.mkOption {
      type = lib.types.either lib.types.ints.unsigned lib.types.str;
      default = 8;
      example = "90m";
      description = "Idle time before the session locks: hours, or a Go duration; 0 disables (--session-timeout).";
    };

    auditLogRetentionDays = lib.mkOption {
      type = lib.types.ints.unsigned;
      default = 30;
      description = "Days of audit files to keep; 0 keeps all (--audit-log-retention-days).";
    };

    policy = lib.mkOption {
      type = lib.types.nullOr (lib.types.attrsOf lib.types.anything);
      default = null;
      example = lib.literalExpression ''
        {
          default_deny = true;
          allow = [ { path = "/etc/profiles/per-user/me/bin/kubectl"; refs = [ "op://Production/*" ]; } ];
        }
      '';
      description = "Access policy, written to ~/.config/op-authd/policy.json (null: no file, everything allowed).";
    };

    environmentFile = lib.mkOption {
      type = lib.types.nullOr lib.types.path;
      default = null;
      description = "File of KEY=VALUE settings for the daemon (VAULT_ADDR, OP_AUTHD_TTL, ...).";
    };
  };

  config = lib.mkIf cfg.enable (lib.mkMerge [
    { home.packages = [ cfg.package ]; }

    (lib.mkIf (cfg.policy != null) {
      xdg.configFile."op-authd/policy.json".text = builtins.toJSON cfg.policy;
    })

    (lib.mkIf pkgs.stdenv.hostPlatform.isLinux {
      systemd.user.services.opx-authd = {
        Unit.Description = "opx secrets broker daemon";
        Service = {
          ExecStart = lib.escapeShellArgs ([ exe ] ++ daemonArgs);
          Restart = "on-failure";
          RestartSec = 2;
          RestartPreventExitStatus = 75;
          Environment = [ "OPX_SERVICE=systemd:opx-authd.service" ];
          LimitCORE = 0;
          UMask = "0077";
        } // lib.optionalAttrs (cfg.environmentFile != null) {
          EnvironmentFile = toString cfg.environmentFile;
        };
        Install.WantedBy = [ "default.target" ];
      };
    })

    (lib.mkIf pkgs.stdenv.hostPlatform.isDarwin {
      launchd.agents.opx-authd = {
        enable = true;
        config = {
          ProgramArguments = darwinArgs;
          RunAtLoad = true;
          KeepAlive.SuccessfulExit = false;
          EnvironmentVariables.OPX_SERVICE = "launchd:org.nix-community.home.opx-authd";
        };
      };
    })
  ]);
}
