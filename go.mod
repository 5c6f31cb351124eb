module github.com/opxhq/opx

go 1.26.8

require (
	github.com/alecthomas/kong v1.17.0
	github.com/jellydator/ttlcache/v3 v3.4.1
	github.com/rs/zerolog v1.35.1
	golang.org/x/sys v0.50.0
	golang.org/x/term v0.48.0
)

require (
	github.com/mattn/go-colorable v0.1.14 // indirect
	github.com/mattn/go-isatty v0.0.20 // indirect
	golang.org/x/sync v0.25.0 // indirect
)
