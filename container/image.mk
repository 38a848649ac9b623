# The container image (docs/image.md). Included by the Makefile.
#   make image                        build cephaloproxy:trixie
#   make image DEBIAN_RELEASE=bookworm
#   make run                          build if needed, run on 127.0.0.1:3128/8080, Ctrl-C stops
#   make verify-image                 the image's promises, checked (no shell, any UID, ...)
#   make image-packages               the Debian packages recorded in the image
#   make image PLATFORM=linux/arm64   another architecture (cephaloproxy:trixie-arm64)
#   make image PLATFORMS=linux/amd64,linux/arm64
#                                     both, and a manifest list (podman)
#   make verify-image PLATFORM=...    (or PLATFORMS=...) checks that image, or each
# ENGINE=docker|podman, BUILDER_IMAGE, PROXY_PORT, HEALTH_PORT pass through too.
# The defaults of DEBIAN_RELEASE, IMAGE and PLATFORM live in container/engine.sh only.
export DEBIAN_RELEASE IMAGE PLATFORM PLATFORMS

.PHONY: image run verify-image image-packages

image:
	container/build-image

run:
	container/run-image

verify-image:
	container/verify-image

image-packages:
	container/list-packages
