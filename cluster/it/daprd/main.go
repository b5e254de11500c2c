// Command daprd is the real Dapr sidecar (github.com/dapr/dapr v1.18.3, cmd/daprd/app) with
// only the components taskstream's cluster mode uses registered, so it builds in minutes
// instead of compiling every cloud SDK that the upstream "allcomponents" flavour pulls in.
//
// Upstream registers components in package cmd/daprd/components, whose files need the
// "allcomponents" or "stablecomponents" build tag; without a tag its zz_notag.go panics.
// build.sh builds without tags and uses `go build -overlay` to swap zz_notag.go for
// overlay/components_subset.go (an empty package file), and this main registers the subset.
package main

import (
	"github.com/dapr/components-contrib/nameresolution/nameformat"
	kafkapubsub "github.com/dapr/components-contrib/pubsub/kafka"
	redispubsub "github.com/dapr/components-contrib/pubsub/redis"
	"github.com/dapr/components-contrib/secretstores/local/env"
	"github.com/dapr/components-contrib/secretstores/local/file"
	"github.com/dapr/components-contrib/state/redis"

	"github.com/dapr/dapr/cmd/daprd/app"
	nrLoader "github.com/dapr/dapr/pkg/components/nameresolution"
	pubsubLoader "github.com/dapr/dapr/pkg/components/pubsub"
	secretstoresLoader "github.com/dapr/dapr/pkg/components/secretstores"
	stateLoader "github.com/dapr/dapr/pkg/components/state"
)

func init() {
	pubsubLoader.DefaultRegistry.RegisterComponent(kafkapubsub.NewKafka, "kafka")
	pubsubLoader.DefaultRegistry.RegisterComponent(redispubsub.NewRedisStreams, "redis")
	stateLoader.DefaultRegistry.RegisterComponent(redis.NewRedisStateStore, "redis")
	secretstoresLoader.DefaultRegistry.RegisterComponent(file.NewLocalSecretStore, "local.file")
	secretstoresLoader.DefaultRegistry.RegisterComponent(env.NewEnvSecretStore, "local.env")
	// Name resolution without network traffic: upstream's self-hosted default, mDNS, sends
	// multicast off the machine; the suite's Configuration selects nameformat instead
	// (taskstream uses no service invocation, so nothing resolves through it).
	nrLoader.DefaultRegistry.RegisterComponent(nameformat.NewResolver, "nameformat")
}

func main() {
	app.Run()
}
