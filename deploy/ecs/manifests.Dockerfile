# The manifests as an image layer on top of iam-warden's image, for ECS (task-definition.json
# runs it). Build from your manifests repository, one image per commit:
#   docker build -f deploy/ecs/manifests.Dockerfile --build-arg IAM_WARDEN=ghcr.io/example/iam-warden:0.1.0 \
#     -t 111122223333.dkr.ecr.eu-west-1.amazonaws.com/iam-warden-manifests:$(git rev-parse --short HEAD) .
ARG IAM_WARDEN=ghcr.io/example/iam-warden:0.1.0
FROM ${IAM_WARDEN}
COPY manifests/agent/ /manifests/
COPY deploy/values.example.yaml /etc/iam-warden/values.yaml
