# oidc-authz image: build the TypeScript, then a small runtime with production dependencies only.
# The chart's default image (charts/oidc-authz/values.yaml image.repository) is built from this file.
FROM node:20-bookworm-slim AS build
WORKDIR /app
COPY package.json package-lock.json ./
RUN npm install --no-audit --no-fund
COPY tsconfig.json tsconfig.build.json ./
COPY src ./src
RUN npx tsc -p tsconfig.build.json

FROM node:20-bookworm-slim AS dependencies
WORKDIR /app
COPY package.json package-lock.json ./
RUN npm install --omit=dev --no-audit --no-fund && npm cache clean --force

FROM gcr.io/distroless/nodejs20-debian12:nonroot
WORKDIR /app
ENV NODE_ENV=production
COPY --from=dependencies /app/node_modules ./node_modules
COPY --from=build /app/dist ./dist
COPY package.json ./
# distroless "nonroot" is uid/gid 65532, as the chart's securityContext expects.
USER 65532:65532
EXPOSE 8080 9090
ENTRYPOINT ["/nodejs/bin/node", "dist/cli.js"]
CMD ["serve", "--config", "/etc/oidc-authz/config.yaml"]
