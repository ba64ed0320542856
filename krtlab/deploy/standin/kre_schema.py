"""KRE's admin API schemas, the part :class:`~krtlab.deploy.standin.LocalKai` serves, one per KRE
version it can stand in for (:data:`KRE_VERSIONS`, ``LocalKai(kre=...)``).

Each is copied from konstellation-io/kre's :data:`SCHEMA_PATH` at a tag (:data:`SOURCES`): the
blocks below are KRE's text unchanged, in KRE's order (``versionName : String!`` included); the
queries, mutations and types the stand-in does not serve are left out (users, settings,
userActivityList, logs, metrics, createRuntime, removeUsers, updateAccessLevel,
revokeUserSessions, createUser, deleteApiToken, updateSettings, the subscriptions and their types).

- ``"7"`` (tag ``kre-7.0.0``): runtimes. Every version query and mutation names its runtime
  (``runtimeId: ID!``), ``runtime(id: ID!)`` takes one and ``runtimes`` lists them.
- ``"3"`` (tag ``kre-3.0.0``, the last without runtimes): one implicit runtime, so no
  ``runtimeId`` anywhere, ``runtime`` without arguments and no ``runtimes`` field; its
  ``Runtime`` has no ``publishedVersion`` or ``creationAuthor``.
"""

__all__ = ["KRE_VERSIONS", "SCHEMAS", "SCHEMA_PATH", "SDL", "SDL_KRE3", "SDL_KRE7", "SOURCES"]

KRE_VERSIONS = ("3", "7")

SCHEMA_PATH = "engine/admin-api/schema.graphql"
SOURCES = {  # the KRE version -> (tag, commit) of konstellation-io/kre its SDL is copied from
    "3": ("kre-3.0.0", "228ab5da0b154fd4aadb4d3ae419819d51672b6e"),
    "7": ("kre-7.0.0", "1daebaa1f8f27a51485a42ffb22de1856ae854ed"),
}

SDL_KRE7 = """\
scalar Upload

type Query {
  me: User
  runtime(id: ID!): Runtime!
  runtimes: [Runtime!]!
  version(
    name: String!
    runtimeId: ID!
  ): Version!
  versions(
    runtimeId: ID!
  ): [Version!]!
}

type Mutation {
  createVersion(input: CreateVersionInput!): Version!
  startVersion(input: StartVersionInput!): Version!
  stopVersion(input: StopVersionInput!): Version!
  publishVersion(input: PublishVersionInput!): Version!
  unpublishVersion(input: UnpublishVersionInput!): Version!
  updateVersionConfiguration(input: UpdateConfigurationInput!): Version!
  generateApiToken(input: GenerateApiTokenInput!): String!
}

input CreateVersionInput {
  file: Upload!
  runtimeId: ID!
}

input StartVersionInput {
  versionName : String!
  comment: String!
  runtimeId: ID!
}

input StopVersionInput {
  versionName: String!
  comment: String!
  runtimeId: ID!
}

input PublishVersionInput {
  versionName: String!
  comment: String!
  runtimeId: ID!
}

input UnpublishVersionInput {
  versionName: String!
  comment: String!
  runtimeId: ID!
}

input GenerateApiTokenInput {
  name: String!
}

type User {
  id: ID!
  email: String!
  accessLevel: AccessLevel!
  creationDate: String!
  lastActivity: String
  activeSessions: Int!
  apiTokens: [ApiToken!]!
}

enum AccessLevel {
  VIEWER
  MANAGER
  ADMIN
}

type ApiToken {
  id: ID!
  name: String!
  creationDate: String!
  lastActivity: String
}

type ConfigurationVariable {
  key: String!
  value: String!
  type: ConfigurationVariableType!
}

enum ConfigurationVariableType {
  VARIABLE
  FILE
}

input ConfigurationVariablesInput {
  key: String!
  value: String!
}

input UpdateConfigurationInput {
  versionName: String!
  runtimeId: ID!
  configurationVariables: [ConfigurationVariablesInput!]!
}

type Runtime {
  id: ID!
  name: String!
  description: String!
  creationDate: String!
  measurementsUrl: String!
  databaseUrl: String!
  entrypointAddress: String!
  publishedVersion: Version
  creationAuthor: User!
}

type Edge {
  id: ID!
  fromNode: ID!
  toNode: ID!
}

type Node {
  id: ID!
  name: String!
  status: NodeStatus!
}

enum NodeStatus {
  STARTING
  STARTED
  STOPPED
  ERROR
}

type Workflow {
  id: ID!
  name: String!
  nodes: [Node!]!
  edges: [Edge!]!
}

type Version {
  id: ID!
  name: String!
  description: String!
  status: VersionStatus!
  creationDate: String!
  creationAuthor: User!
  publicationDate: String
  publicationAuthor: User
  workflows: [Workflow!]!
  config: VersionConfig!
  hasDoc: Boolean
  errors: [String!]!
}

type VersionConfig {
  vars: [ConfigurationVariable!]!
  completed: Boolean!
}

enum VersionStatus {
  CREATING
  CREATED
  STARTING
  STARTED
  PUBLISHED
  STOPPING
  STOPPED
  ERROR
}
"""

SDL_KRE3 = """\
scalar Upload

type Query {
  me: User
  runtime: Runtime!
  version(name: String!): Version!
  versions: [Version!]!
}

type Mutation {
  createVersion(input: CreateVersionInput!): Version!
  startVersion(input: StartVersionInput!): Version!
  stopVersion(input: StopVersionInput!): Version!
  publishVersion(input: PublishVersionInput!): Version!
  unpublishVersion(input: UnpublishVersionInput!): Version!
  updateVersionConfiguration(input: UpdateConfigurationInput!): Version!
  generateApiToken(input: GenerateApiTokenInput!): String!
}

input CreateVersionInput {
  file: Upload!
}

input StartVersionInput {
  versionName : String!
  comment: String!
}

input StopVersionInput {
  versionName: String!
  comment: String!
}

input PublishVersionInput {
  versionName: String!
  comment: String!
}

input UnpublishVersionInput {
  versionName: String!
  comment: String!
}

input GenerateApiTokenInput {
  name: String!
}

type User {
  id: ID!
  email: String!
  accessLevel: AccessLevel!
  creationDate: String!
  lastActivity: String
  activeSessions: Int!
  apiTokens: [ApiToken!]!
}

enum AccessLevel {
  VIEWER
  MANAGER
  ADMIN
}

type ApiToken {
  id: ID!
  name: String!
  creationDate: String!
  lastActivity: String
}

type ConfigurationVariable {
  key: String!
  value: String!
  type: ConfigurationVariableType!
}

enum ConfigurationVariableType {
  VARIABLE
  FILE
}

input ConfigurationVariablesInput {
  key: String!
  value: String!
}

input UpdateConfigurationInput {
  versionName: String!
  configurationVariables: [ConfigurationVariablesInput!]!
}

type Runtime {
  id: ID!
  name: String!
  description: String!
  creationDate: String!
  measurementsUrl: String!
  databaseUrl: String!
  entrypointAddress: String!
}

type Edge {
  id: ID!
  fromNode: ID!
  toNode: ID!
}

type Node {
  id: ID!
  name: String!
  status: NodeStatus!
}

enum NodeStatus {
  STARTING
  STARTED
  STOPPED
  ERROR
}

type Workflow {
  id: ID!
  name: String!
  nodes: [Node!]!
  edges: [Edge!]!
}

type Version {
  id: ID!
  name: String!
  description: String!
  status: VersionStatus!
  creationDate: String!
  creationAuthor: User!
  publicationDate: String
  publicationAuthor: User
  workflows: [Workflow!]!
  config: VersionConfig!
  hasDoc: Boolean
  errors: [String!]!
}

type VersionConfig {
  vars: [ConfigurationVariable!]!
  completed: Boolean!
}

enum VersionStatus {
  CREATING
  CREATED
  STARTING
  STARTED
  PUBLISHED
  STOPPING
  STOPPED
  ERROR
}
"""

SDL = SDL_KRE7  # the default
SCHEMAS = {"3": SDL_KRE3, "7": SDL_KRE7}
