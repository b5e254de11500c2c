// Replaces github.com/dapr/dapr/cmd/daprd/components/zz_notag.go at build time (go build
// -overlay, see build.sh): upstream's file panics when no component flavour tag is set; the
// wrapper's main registers its own subset instead, so this file only keeps the package.
package components
