"""KRE 7's admin API schema, the part :class:`~krtlab.deploy.standin.LocalKai` serves.

Copied from konstellation-io/kre at tag ``kre-7.0.0`` (commit 1daebaa1f8f2),
``engine/admin-api/schema.graphql``: the blocks below are KRE's text unchanged, in KRE's order
(``versionName : String!`` included); the queries, mutations and types the stand-in does not serve
are left out (users, settings, userActivityList, logs, metrics, createRuntime, removeUsers,
updateAccessLevel, revokeUserSessions, createUser, deleteApiToken, updateSettings, the
subscriptions and their types). Required arguments are KRE's: every version query and mutation
names its runtime (``runtimeId: ID!``).
"""

__all__ = ["SDL"]

SDL = """\
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
