/**
 * The Agent Registry, agent registrations, the Copilot package catalog, the
 * Copilot admin settings and JSON batching through Microsoft's Graph beta
 * TypeScript SDK (@microsoft/msgraph-beta-sdk with msgraph-sdk-core and the
 * Kiota packages), unchanged but for the base URL and the token.
 *
 * The package ships the models and the request adapter but no request builders
 * for /agentRegistry or /copilot, so each call is the RequestInformation a
 * Kiota-generated builder makes (URL template, path parameters, query
 * parameter names, Accept header, body serialised with the model's
 * serializer), sent through the adapter with Graph's error mapping.
 *
 * Usage: node session.js ORIGIN TOKEN
 *   ORIGIN  the server without the version (http://127.0.0.1:PORT), started
 *           with examples/seed.json (the seeded registry objects, packages
 *           and Copilot settings are read)
 *   TOKEN   a token for the seed's first tenant (`agentry token --tenant ...`)
 * Prints a line per step and a closing "typescript: N passed, N failed";
 * exits 1 if any step failed.
 */
import {
  AllowedHostsValidator,
  BaseBearerTokenAuthenticationProvider,
  HttpMethod,
  RequestInformation,
  createUntypedArray,
  createUntypedNumber,
  createUntypedObject,
  createUntypedString,
  isUntypedArray,
  isUntypedNumber,
  isUntypedObject,
  isUntypedString,
  type AccessTokenProvider,
  type ErrorMappings,
  type ModelSerializerFunction,
  type Parsable,
  type ParsableFactory,
  type ParseNode,
  type SerializationWriter,
  type UntypedNode,
} from "@microsoft/kiota-abstractions";
import { HeadersInspectionOptions } from "@microsoft/kiota-http-fetchlibrary";
import { GraphBetaRequestAdapter } from "@microsoft/msgraph-beta-sdk";
import {
  AccessEntityTypeObject,
  PackageStatusObject,
  PackageTypeObject,
  createAgentCardManifestCollectionResponseFromDiscriminatorValue,
  createAgentCardManifestFromDiscriminatorValue,
  createAgentCollectionCollectionResponseFromDiscriminatorValue,
  createAgentCollectionFromDiscriminatorValue,
  createAgentInstanceCollectionResponseFromDiscriminatorValue,
  createAgentInstanceFromDiscriminatorValue,
  createAgentRegistrationFromDiscriminatorValue,
  createAgentRegistryFromDiscriminatorValue,
  createCopilotPackageDetailFromDiscriminatorValue,
  createCopilotAdminLimitedModeFromDiscriminatorValue,
  createCopilotPackageFromDiscriminatorValue,
  createCopilotPolicySettingFromDiscriminatorValue,
  createEnhancedPersonalizationSettingFromDiscriminatorValue,
  deserializeIntoBaseCollectionPaginationCountResponse,
  serializeAgentCardManifest,
  serializeAgentCollection,
  serializeAgentInstance,
  serializeAgentRegistration,
  serializeAgentRegistry,
  serializeCopilotAdminLimitedMode,
  serializeCopilotPackageDetail,
  serializeCopilotPolicySetting,
  serializeEnhancedPersonalizationSetting,
  serializeReferenceCreate,
  type AgentCardManifest,
  type AgentCardManifestCollectionResponse,
  type AgentCollection,
  type AgentCollectionCollectionResponse,
  type AgentInstance,
  type AgentInstanceCollectionResponse,
  type AgentRegistration,
  type AgentRegistry,
  type BaseCollectionPaginationCountResponse,
  type CopilotAdminLimitedMode,
  type CopilotPackage,
  type CopilotPolicySetting,
  type EnhancedPersonalizationSetting,
  type CopilotPackageDetail,
  type ReferenceCreate,
} from "@microsoft/msgraph-beta-sdk/models/index.js";
import { createODataErrorFromDiscriminatorValue, type ODataError } from "@microsoft/msgraph-beta-sdk/models/oDataErrors/index.js";
import {
  BatchRequestContent,
  BatchRequestContentCollection,
  PageIterator,
  type BatchResponse,
  type PageCollection,
} from "@microsoft/msgraph-sdk-core";

// Node's process, declared here rather than installing @types/node for two members.
declare const process: { argv: string[]; exit(code?: number): never };

const [origin, token] = process.argv.slice(2);
if (!origin || !token) {
  console.error("usage: node session.js ORIGIN TOKEN");
  process.exit(2);
}

// --- the adapter, as an application would set it up -------------------------

class StaticToken implements AccessTokenProvider {
  private readonly hosts = new AllowedHostsValidator(new Set([new URL(origin).hostname]));
  getAuthorizationToken = async (url?: string): Promise<string> => (url && this.hosts.isUrlHostValid(url) ? token : "");
  getAllowedHostsValidator = (): AllowedHostsValidator => this.hosts;
}

const adapter = new GraphBetaRequestAdapter(new BaseBearerTokenAuthenticationProvider(new StaticToken()));
adapter.baseUrl = `${origin}/beta`;

/** The error mapping every generated Graph builder passes. */
const errors: ErrorMappings = { XXX: createODataErrorFromDiscriminatorValue as ParsableFactory<Parsable> };

// --- requests as Kiota's generated builders make them ------------------------

const LIST = "{?%24count,%24expand,%24filter,%24orderby,%24search,%24select,%24skip,%24top}";
const ITEM = "{?%24expand,%24select}";
const COUNT = "{?%24filter,%24search}";
const QUERY_NAMES: Record<string, string> = {
  count: "%24count",
  expand: "%24expand",
  filter: "%24filter",
  orderby: "%24orderby",
  search: "%24search",
  select: "%24select",
  skip: "%24skip",
  top: "%24top",
};

interface Query {
  count?: boolean;
  expand?: string[];
  filter?: string;
  orderby?: string[];
  search?: string;
  select?: string[];
  skip?: number;
  top?: number;
}

interface Config {
  queryParameters?: Query;
  headers?: Record<string, string | string[]>;
  inspect?: HeadersInspectionOptions;
}

type Path = Record<string, string>;

function request(method: HttpMethod, template: string, path: Path, config?: Config, accept = "application/json"): RequestInformation {
  const info = new RequestInformation(method, `{+baseurl}${template}`, { baseurl: adapter.baseUrl, ...path });
  info.configure(config, QUERY_NAMES);
  if (config?.inspect) info.addRequestOptions([config.inspect]);
  info.headers.tryAdd("Accept", accept);
  return info;
}

function withBody<T extends Parsable>(info: RequestInformation, body: T, serializer: ModelSerializerFunction<T>): RequestInformation {
  info.setContentFromParsable(adapter, "application/json", body, serializer);
  return info;
}

const get = <T extends Parsable>(template: string, path: Path, factory: ParsableFactory<T>, config?: Config) =>
  adapter.send<T>(request(HttpMethod.GET, template, path, config), factory, errors);

const count = (template: string, path: Path, config?: Config) =>
  adapter.sendPrimitive<number>(request(HttpMethod.GET, template, path, config, "text/plain;q=0.9"), "number", errors);

const post = <T extends Parsable>(
  template: string,
  path: Path,
  body: T,
  serializer: ModelSerializerFunction<T>,
  factory: ParsableFactory<T>,
  config?: Config,
) => adapter.send<T>(withBody(request(HttpMethod.POST, template, path, config), body, serializer), factory, errors);

const patch = <T extends Parsable>(
  template: string,
  path: Path,
  body: T,
  serializer: ModelSerializerFunction<T>,
  factory: ParsableFactory<T>,
  config?: Config,
) => adapter.send<T>(withBody(request(HttpMethod.PATCH, template, path, config), body, serializer), factory, errors);

const remove = (template: string, path: Path, config?: Config) =>
  adapter.sendNoResponseContent(request(HttpMethod.DELETE, template, path, config), errors);

// The builders' templates and path parameter names.
const R = "/agentRegistry";
const INSTANCES = `${R}/agentInstances`;
const INSTANCE = `${INSTANCES}/{agentInstance%2Did}`;
const MANIFESTS = `${R}/agentCardManifests`;
const MANIFEST = `${MANIFESTS}/{agentCardManifest%2Did}`;
const COLLECTIONS = `${R}/agentCollections`;
const COLLECTION = `${COLLECTIONS}/{agentCollection%2Did}`;
const MEMBERS = `${COLLECTION}/members`;
const MEMBER = `${MEMBERS}/{agentInstance%2Did}`;
const INSTANCE_COLLECTIONS = `${INSTANCE}/collections`;
const REGISTRATIONS = "/copilot/agentRegistrations";
const REGISTRATION = `${REGISTRATIONS}/{agentRegistration%2Did}`;
const PACKAGES = "/copilot/admin/catalog/packages";
const PACKAGE = `${PACKAGES}/{copilotPackageDetail%2Did}`;
const POLICY_SETTING = "/copilot/admin/policySettings/{copilotPolicySetting%2Did}";
const LIMITED_MODE = "/copilot/admin/settings/limitedMode";
const PERSONALIZATION = "/copilot/settings/people/enhancedPersonalization";

const instance = (id: string): Path => ({ "agentInstance%2Did": id });
const manifest = (id: string): Path => ({ "agentCardManifest%2Did": id });
const collection = (id: string, member?: string): Path => ({
  "agentCollection%2Did": id,
  ...(member === undefined ? {} : { "agentInstance%2Did": member }),
});
const registration = (id: string): Path => ({ "agentRegistration%2Did": id });
const pkg = (id: string): Path => ({ "copilotPackageDetail%2Did": id });
const setting = (id: string): Path => ({ "copilotPolicySetting%2Did": id });

// Collection responses the package has no model for (agent registrations and
// packages), written as Kiota writes them for the other entity sets.
interface CollectionOf<T> extends BaseCollectionPaginationCountResponse {
  value?: T[] | null;
}
function collectionOf<T extends Parsable>(item: ParsableFactory<T>): ParsableFactory<CollectionOf<T>> {
  return () =>
    (response: Partial<CollectionOf<T>> = {}) => ({
      ...deserializeIntoBaseCollectionPaginationCountResponse(response),
      value: (n: ParseNode) => {
        response.value = n.getCollectionOfObjectValues<T>(item);
      },
    });
}
const createAgentRegistrationCollectionResponse = collectionOf<AgentRegistration>(createAgentRegistrationFromDiscriminatorValue);
const createCopilotPackageCollectionResponse = collectionOf<CopilotPackage>(createCopilotPackageFromDiscriminatorValue);

// The body of POST /copilot/admin/catalog/packages/{id}/reassign.
interface ReassignPostRequestBody extends Parsable {
  userId?: string | null;
}
function serializeReassignPostRequestBody(
  writer: SerializationWriter,
  body: Partial<ReassignPostRequestBody> | undefined | null = {},
): void {
  if (body) writer.writeStringValue("userId", body.userId);
}

// --- checks ------------------------------------------------------------------

let passed = 0;
const failures: string[] = [];

async function step(name: string, body: () => Promise<void>): Promise<void> {
  try {
    await body();
    passed++;
    console.log(`ok    ${name}`);
  } catch (e) {
    failures.push(name);
    console.log(`FAIL  ${name}\n      ${describe(e)}`);
  }
}

function isODataError(e: unknown): e is ODataError {
  return typeof e === "object" && e !== null && "responseStatusCode" in e;
}

function describe(e: unknown): string {
  if (isODataError(e)) {
    const code = e.errorEscaped?.code ?? "(no error code)";
    return `${e.responseStatusCode} ${code}: ${e.errorEscaped?.message ?? e.message}`;
  }
  return e instanceof Error ? (e.stack ?? e.message) : String(e);
}

function show(value: unknown): string {
  if (value instanceof Date) return `Date(${value.toISOString()})`;
  try {
    return JSON.stringify(value) ?? String(value);
  } catch {
    return String(value);
  }
}

function check(condition: unknown, what: string, got?: unknown): asserts condition {
  if (!condition) throw new Error(arguments.length > 2 ? `${what} (got ${show(got)})` : what);
}

function equal(got: unknown, want: unknown, what: string): void {
  check(show(got) === show(want), `${what}: expected ${show(want)}`, got);
}

function isDate(value: unknown): value is Date {
  return value instanceof Date && !Number.isNaN(value.getTime());
}

function present<T>(value: T | null | undefined, what: string): T {
  check(value !== undefined && value !== null, `${what} is missing`);
  return value;
}

/** Runs a call that must fail with an ODataError of this status and code. */
async function refused(call: Promise<unknown>, status: number, code: string | null): Promise<ODataError> {
  let result: unknown;
  try {
    result = await call;
  } catch (e) {
    check(isODataError(e), `expected an ODataError, got ${describe(e)}`);
    check(e.responseStatusCode === status, `expected status ${status}, got ${describe(e)}`);
    if (code !== null) check(e.errorEscaped?.code === code, `expected error code ${code}, got ${describe(e)}`);
    check(typeof e.errorEscaped?.message === "string" && e.errorEscaped.message.length > 0, "error message is empty");
    check(e.message === e.errorEscaped?.message, "ODataError.message is the error's message", e.message);
    return e;
  }
  throw new Error(`expected ${status} ${code ?? ""}, got a success: ${show(result)}`);
}

function etagOf(entity: { additionalData?: Record<string, unknown> }): string {
  const etag = entity.additionalData?.["@odata.etag"];
  check(typeof etag === "string" && etag.startsWith('W/"'), "@odata.etag is a weak entity tag", etag);
  return etag;
}

function header(inspect: HeadersInspectionOptions, name: string): string | undefined {
  const values = inspect.getResponseHeaders().get(name);
  return values ? [...values][0] : undefined;
}

const untypedValue = (node: UntypedNode | null | undefined, key: string): UntypedNode | undefined =>
  node && isUntypedObject(node) ? node.getValue()[key] : undefined;

// --- the session -------------------------------------------------------------

const OWNER = "c0ffee00-0000-4000-8000-0000000000a1";
const OTHER_OWNER = "c0ffee00-0000-4000-8000-0000000000a2";
const ALPHA = "TS agent: alpha 001"; // a key with a space and a colon, as Graph's examples have
const BETA = "ts-beta";
const CARD = "ts-card-alpha";
const STANDALONE = "ts-card-standalone";
const PAGED = ["ts-page-1", "ts-page-2", "ts-page-3", "ts-page-4", "ts-page-5", "ts-page-6", "ts-page-7"];
const GLOBAL = "00000000-0000-0000-0000-000000000001";
const SEEDED_INSTANCE = "employee-assistant-prod";
const SEEDED_MANIFEST = "employee-assistant";
const TRAVEL = "P_19ae1ab1-56bc-505a-3d42-156df75a4001";
const ADDIN = "P_19ae1ab1-56bc-505a-3d42-156df75a4003";

const manifestBody = (): AgentCardManifest => ({
  id: CARD,
  displayName: "TS Card Alpha",
  description: "Answers questions about TypeScript sessions.",
  protocolVersion: "0.3.0",
  version: "1.0.0",
  iconUrl: "https://agents.contoso.example/alpha.png",
  documentationUrl: "https://agents.contoso.example/alpha/docs",
  ownerIds: [OWNER],
  provider: { organization: "Contoso", url: "https://contoso.example" },
  capabilities: {
    streaming: true,
    pushNotifications: false,
    stateTransitionHistory: false,
    extensions: [
      {
        uri: "https://contoso.example/ext/audit",
        description: "Audit trail",
        required: false,
        params: { additionalData: { level: "full", retention: { days: 30 } } },
      },
    ],
  },
  skills: [
    {
      id: "answer",
      displayName: "Answer",
      description: "Answers a question",
      tags: ["qa", "typescript"],
      examples: ["What is a PageIterator?"],
      inputModes: ["text/plain"],
      outputModes: ["text/plain", "application/json"],
    },
  ],
  defaultInputModes: ["text/plain"],
  defaultOutputModes: ["text/plain"],
  securitySchemes: {
    additionalData: {
      entra: { type: "openIdConnect", openIdConnectUrl: "https://login.contoso.example/.well-known/openid-configuration" },
    },
  },
  security: [{ additionalData: { entra: ["agents.read"] } }],
  supportsAuthenticatedExtendedCard: true,
});

let baseInstances = 0;
let baseManifests = 0;
let baseCollections = 0;
let collectionId = "";
let alphaCreated: Date | undefined;

async function registry(): Promise<void> {
  await step("GET /agentRegistry", async () => {
    const root = present(await get<AgentRegistry>(`${R}${ITEM}`, {}, createAgentRegistryFromDiscriminatorValue), "the registry");
    const context = root.additionalData?.["@odata.context"];
    check(
      typeof context === "string" && context.endsWith("$metadata#agentRegistry/$entity"),
      "@odata.context names the singleton",
      context,
    );
    equal(root.agentInstances, undefined, "navigation properties are not expanded");
  });
  await step("PATCH /agentRegistry with an empty object answers 204", async () => {
    equal(
      await patch<AgentRegistry>(R, {}, {}, serializeAgentRegistry, createAgentRegistryFromDiscriminatorValue),
      undefined,
      "the answer",
    );
  });
}

async function instances(): Promise<void> {
  await step("counts before the session's objects ($count)", async () => {
    baseInstances = present(await count(`${INSTANCES}/$count${COUNT}`, {}), "instances/$count");
    baseManifests = present(await count(`${MANIFESTS}/$count${COUNT}`, {}), "agentCardManifests/$count");
    baseCollections = present(await count(`${COLLECTIONS}/$count${COUNT}`, {}), "agentCollections/$count");
    check(baseInstances >= 1 && baseManifests >= 1, "the seeded instance and manifest are counted", [baseInstances, baseManifests]);
    check(baseCollections >= 3, "the reserved collections and the seeded one are counted", baseCollections);
  });

  await step("POST /agentInstances with a deep-inserted manifest (201, Location, ETag)", async () => {
    const inspect = new HeadersInspectionOptions({ inspectResponseHeaders: true });
    const body: AgentInstance = {
      id: ALPHA,
      displayName: "TS Alpha",
      ownerIds: [OWNER],
      originatingStore: "TypeScript session",
      sourceAgentId: "ts-alpha-source",
      agentIdentityId: "3f1c9c1e-0000-4000-8000-0000000000b1",
      url: "https://agents.contoso.example/alpha/a2a",
      preferredTransport: "JSONRPC",
      additionalInterfaces: [{ url: "https://agents.contoso.example/alpha/grpc", transport: "GRPC" }],
      signatures: [{ protected: "eyJhbGciOiJFUzI1NiJ9", signature: "c2lnbmF0dXJl", header: { additionalData: { kid: "key-1" } } }],
      createdDateTime: new Date("2001-01-01T00:00:00Z"), // the server's to set: ignored
      agentCardManifest: manifestBody(),
    };
    const created = present(
      await post<AgentInstance>(INSTANCES, {}, body, serializeAgentInstance, createAgentInstanceFromDiscriminatorValue, { inspect }),
      "the created instance",
    );
    equal(created.id, ALPHA, "id");
    equal(created.displayName, "TS Alpha", "displayName");
    equal(created.ownerIds, [OWNER], "ownerIds");
    equal(created.preferredTransport, "JSONRPC", "preferredTransport");
    equal(
      created.additionalInterfaces?.map((i) => [i.url, i.transport]),
      [["https://agents.contoso.example/alpha/grpc", "GRPC"]],
      "additionalInterfaces",
    );
    equal(created.signatures?.[0]?.header?.additionalData?.["kid"], "key-1", "signatures[0].header (an open type)");
    equal(created.signatures?.[0]?.signature, "c2lnbmF0dXJl", "signatures[0].signature");
    check(typeof created.createdBy === "string" && created.createdBy.length > 0, "createdBy is the caller", created.createdBy);
    check(isDate(created.createdDateTime), "createdDateTime is a Date", created.createdDateTime);
    check(created.createdDateTime.getUTCFullYear() > 2001, "createdDateTime is the server's", created.createdDateTime);
    check(isDate(created.lastModifiedDateTime), "lastModifiedDateTime is a Date", created.lastModifiedDateTime);
    equal(created.agentCardManifest, undefined, "the deep-inserted manifest is not in the answer");
    alphaCreated = created.createdDateTime;
    const etag = etagOf(created);
    equal(header(inspect, "etag"), etag, "the ETag header");
    const location = present(header(inspect, "location"), "Location");
    check(decodeURIComponent(location).includes(ALPHA), "Location names the instance", location);
  });

  await step("GET /agentInstances/{id} with $expand=agentCardManifest (nested models)", async () => {
    const got = present(
      await get<AgentInstance>(`${INSTANCE}${ITEM}`, instance(ALPHA), createAgentInstanceFromDiscriminatorValue, {
        queryParameters: { expand: ["agentCardManifest"] },
      }),
      "the instance",
    );
    const card = present(got.agentCardManifest, "agentCardManifest");
    equal(card.id, CARD, "manifest id");
    equal(card.displayName, "TS Card Alpha", "manifest displayName");
    equal(card.provider?.organization, "Contoso", "provider.organization");
    equal(card.capabilities?.streaming, true, "capabilities.streaming");
    equal(card.capabilities?.pushNotifications, false, "capabilities.pushNotifications");
    equal(
      card.capabilities?.extensions?.[0]?.params?.additionalData,
      { level: "full", retention: { days: 30 } },
      "extension params (an open type)",
    );
    equal(card.skills?.[0]?.tags, ["qa", "typescript"], "skills[0].tags");
    equal(card.skills?.[0]?.outputModes, ["text/plain", "application/json"], "skills[0].outputModes");
    equal(
      card.securitySchemes?.additionalData?.["entra"],
      manifestBody().securitySchemes?.additionalData?.["entra"],
      "securitySchemes (an open type)",
    );
    equal(card.security?.[0]?.additionalData, { entra: ["agents.read"] }, "security[0] (an open type)");
    equal(card.supportsAuthenticatedExtendedCard, true, "supportsAuthenticatedExtendedCard");
    check(isDate(card.createdDateTime), "manifest createdDateTime is a Date", card.createdDateTime);
    etagOf(card);
  });

  await step("GET /agentInstances/{id} with $select", async () => {
    const got = present(
      await get<AgentInstance>(`${INSTANCE}${ITEM}`, instance(ALPHA), createAgentInstanceFromDiscriminatorValue, {
        queryParameters: { select: ["id", "displayName"] },
      }),
      "the instance",
    );
    equal([got.id, got.displayName], [ALPHA, "TS Alpha"], "selected properties");
    equal([got.url, got.ownerIds, got.createdDateTime], [undefined, undefined, undefined], "properties not selected");
  });

  await step("GET /agentInstances/{id}/agentCardManifest", async () => {
    const card = present(
      await get<AgentCardManifest>(`${INSTANCE}/agentCardManifest${ITEM}`, instance(ALPHA), createAgentCardManifestFromDiscriminatorValue),
      "the manifest",
    );
    equal(card.id, CARD, "id");
    equal(card.defaultInputModes, ["text/plain"], "defaultInputModes");
  });

  await step("PATCH /agentInstances/{id}/agentCardManifest answers 200 with the manifest", async () => {
    const card = present(
      await patch<AgentCardManifest>(
        `${INSTANCE}/agentCardManifest`,
        instance(ALPHA),
        { description: "Updated through the instance." },
        serializeAgentCardManifest,
        createAgentCardManifestFromDiscriminatorValue,
      ),
      "the manifest",
    );
    equal(card.description, "Updated through the instance.", "description");
    equal(card.displayName, "TS Card Alpha", "displayName is kept");
    check(
      isDate(card.lastModifiedDateTime) && isDate(card.createdDateTime) && card.lastModifiedDateTime >= card.createdDateTime,
      "lastModifiedDateTime moves on",
      card.lastModifiedDateTime,
    );
  });

  await step("POST /agentInstances with agentCardManifest@odata.bind (a shared manifest)", async () => {
    const body: AgentInstance = {
      id: BETA,
      displayName: "TS Beta",
      ownerIds: [OWNER, OTHER_OWNER],
      additionalData: { "agentCardManifest@odata.bind": `${origin}/beta/agentRegistry/agentCardManifests('${CARD}')` },
    };
    const created = present(
      await post<AgentInstance>(INSTANCES, {}, body, serializeAgentInstance, createAgentInstanceFromDiscriminatorValue),
      "the created instance",
    );
    equal(created.ownerIds, [OWNER, OTHER_OWNER], "ownerIds");
    equal(created.additionalInterfaces, [], "unset additionalInterfaces is []");
    const card = present(
      await get<AgentCardManifest>(`${INSTANCE}/agentCardManifest${ITEM}`, instance(BETA), createAgentCardManifestFromDiscriminatorValue),
      "the linked manifest",
    );
    equal(card.id, CARD, "the bound manifest");
  });

  await step("GET /agentInstances with $filter, $orderby, $select and $count", async () => {
    const page = present(
      await get<AgentInstanceCollectionResponse>(`${INSTANCES}${LIST}`, {}, createAgentInstanceCollectionResponseFromDiscriminatorValue, {
        queryParameters: {
          filter: "startswith(displayName,'TS ')",
          orderby: ["displayName desc"],
          select: ["id", "displayName"],
          count: true,
        },
      }),
      "the page",
    );
    equal(
      page.value?.map((i) => i.id),
      [BETA, ALPHA],
      "instances, by displayName descending",
    );
    equal(page.odataCount, 2, "@odata.count");
    equal(page.odataNextLink, undefined, "no next link on the last page");
  });

  await step("GET /agentInstances/$count (all, and filtered through the manifest)", async () => {
    equal(await count(`${INSTANCES}/$count${COUNT}`, {}), baseInstances + 2, "$count");
    equal(
      await count(`${INSTANCES}/$count${COUNT}`, {}, { queryParameters: { filter: "agentCardManifest/displayName eq 'TS Card Alpha'" } }),
      2,
      "$count with $filter",
    );
  });

  await step("PATCH /agentInstances/{id} answers 204, and the change is kept", async () => {
    const answer = await patch<AgentInstance>(
      INSTANCE,
      instance(ALPHA),
      { displayName: "TS Alpha renamed", additionalInterfaces: [] },
      serializeAgentInstance,
      createAgentInstanceFromDiscriminatorValue,
    );
    equal(answer, undefined, "the answer");
    const got = present(
      await get<AgentInstance>(`${INSTANCE}${ITEM}`, instance(ALPHA), createAgentInstanceFromDiscriminatorValue),
      "the instance",
    );
    equal(got.displayName, "TS Alpha renamed", "displayName");
    equal(got.additionalInterfaces, [], "additionalInterfaces replaced whole");
    equal(got.url, "https://agents.contoso.example/alpha/a2a", "url is kept");
    equal(got.createdDateTime?.getTime(), alphaCreated?.getTime(), "createdDateTime is kept");
  });

  await step("PATCH /agentInstances/{id} with Prefer: return=representation answers 200", async () => {
    const inspect = new HeadersInspectionOptions({ inspectResponseHeaders: true });
    const got = present(
      await patch<AgentInstance>(
        INSTANCE,
        instance(ALPHA),
        { url: "https://agents.contoso.example/alpha/v2" },
        serializeAgentInstance,
        createAgentInstanceFromDiscriminatorValue,
        {
          headers: { Prefer: "return=representation" },
          inspect,
        },
      ),
      "the instance",
    );
    equal(got.url, "https://agents.contoso.example/alpha/v2", "url");
    equal(got.displayName, "TS Alpha renamed", "displayName");
    check(
      isDate(got.lastModifiedDateTime) && alphaCreated !== undefined && got.lastModifiedDateTime > alphaCreated,
      "lastModifiedDateTime moved on",
      got.lastModifiedDateTime,
    );
    equal(header(inspect, "preference-applied"), "return=representation", "Preference-Applied");
  });

  await step("If-Match: a stale tag is 412, the current one succeeds", async () => {
    const got = present(
      await get<AgentInstance>(`${INSTANCE}${ITEM}`, instance(ALPHA), createAgentInstanceFromDiscriminatorValue),
      "the instance",
    );
    const etag = etagOf(got);
    await refused(
      patch<AgentInstance>(
        INSTANCE,
        instance(ALPHA),
        { sourceAgentId: "stale" },
        serializeAgentInstance,
        createAgentInstanceFromDiscriminatorValue,
        { headers: { "If-Match": 'W/"1-00000000"' } },
      ),
      412,
      "resourceModified",
    );
    await patch<AgentInstance>(
      INSTANCE,
      instance(ALPHA),
      { sourceAgentId: "ts-alpha-source-2" },
      serializeAgentInstance,
      createAgentInstanceFromDiscriminatorValue,
      { headers: { "If-Match": etag } },
    );
    const after = present(
      await get<AgentInstance>(`${INSTANCE}${ITEM}`, instance(ALPHA), createAgentInstanceFromDiscriminatorValue),
      "the instance",
    );
    equal(after.sourceAgentId, "ts-alpha-source-2", "sourceAgentId");
    check(etagOf(after) !== etag, "the entity tag changed", etagOf(after));
  });

  await step("GET with If-None-Match: the current tag answers 304 (no model)", async () => {
    const got = present(
      await get<AgentInstance>(`${INSTANCE}${ITEM}`, instance(ALPHA), createAgentInstanceFromDiscriminatorValue),
      "the instance",
    );
    const inspect = new HeadersInspectionOptions({ inspectResponseHeaders: true });
    const again = await get<AgentInstance>(`${INSTANCE}${ITEM}`, instance(ALPHA), createAgentInstanceFromDiscriminatorValue, {
      headers: { "If-None-Match": etagOf(got) },
      inspect,
    });
    equal(again, undefined, "the answer");
    equal(header(inspect, "etag"), etagOf(got), "the ETag header");
  });

  await step("PATCH with nulls: a property cleared, the manifest unlinked and bound again, displayName refused", async () => {
    await patch<AgentInstance>(
      INSTANCE,
      instance(ALPHA),
      { url: null, agentCardManifest: null },
      serializeAgentInstance,
      createAgentInstanceFromDiscriminatorValue,
    );
    const got = present(
      await get<AgentInstance>(`${INSTANCE}${ITEM}`, instance(ALPHA), createAgentInstanceFromDiscriminatorValue, {
        queryParameters: { expand: ["agentCardManifest"] },
      }),
      "the instance",
    );
    // JSON null reads as undefined; an expanded null navigation property as an empty model.
    equal([got.url, got.agentCardManifest?.id], [undefined, undefined], "url and agentCardManifest (null in JSON)");
    await refused(
      patch<AgentInstance>(
        INSTANCE,
        instance(ALPHA),
        { displayName: null },
        serializeAgentInstance,
        createAgentInstanceFromDiscriminatorValue,
      ),
      400,
      "ValidationError",
    );
    const bind = {
      additionalData: { "agentCardManifest@odata.bind": `agentCardManifests('${CARD}')` },
      url: "https://agents.contoso.example/alpha/v2",
    };
    await patch<AgentInstance>(INSTANCE, instance(ALPHA), bind, serializeAgentInstance, createAgentInstanceFromDiscriminatorValue);
    const card = present(
      await get<AgentCardManifest>(`${INSTANCE}/agentCardManifest${ITEM}`, instance(ALPHA), createAgentCardManifestFromDiscriminatorValue),
      "the manifest",
    );
    equal(card.id, CARD, "the manifest bound again");
  });

  await step("DELETE /agentInstances/{id}/agentCardManifest unlinks it (then 404 AgentCardNotFound)", async () => {
    await remove(`${INSTANCE}/agentCardManifest`, instance(BETA));
    await refused(
      get<AgentCardManifest>(`${INSTANCE}/agentCardManifest${ITEM}`, instance(BETA), createAgentCardManifestFromDiscriminatorValue),
      404,
      "AgentCardNotFound",
    );
    const card = present(
      await get<AgentCardManifest>(`${MANIFEST}${ITEM}`, manifest(CARD), createAgentCardManifestFromDiscriminatorValue),
      "the manifest",
    );
    equal(card.id, CARD, "the manifest is kept");
  });
}

async function manifests(): Promise<void> {
  await step("GET /agentCardManifests with $filter and $count", async () => {
    const page = present(
      await get<AgentCardManifestCollectionResponse>(
        `${MANIFESTS}${LIST}`,
        {},
        createAgentCardManifestCollectionResponseFromDiscriminatorValue,
        {
          queryParameters: { filter: "skills/any(s: s/tags/any(t: t eq 'typescript'))", count: true },
        },
      ),
      "the page",
    );
    equal(
      page.value?.map((m) => m.id),
      [CARD],
      "manifests with a skill tagged typescript",
    );
    equal(page.odataCount, 1, "@odata.count");
    equal(page.value?.[0]?.skills?.[0]?.examples, ["What is a PageIterator?"], "skills[0].examples");
  });

  await step("GET /agentCardManifests/$count", async () => {
    equal(await count(`${MANIFESTS}/$count${COUNT}`, {}), baseManifests + 1, "$count");
  });

  await step("GET /agentCardManifests/{id} (seeded and created)", async () => {
    const seeded = present(
      await get<AgentCardManifest>(`${MANIFEST}${ITEM}`, manifest(SEEDED_MANIFEST), createAgentCardManifestFromDiscriminatorValue),
      "the seeded manifest",
    );
    equal(seeded.displayName, "Employee Assistant", "seeded displayName");
    const card = present(
      await get<AgentCardManifest>(`${MANIFEST}${ITEM}`, manifest(CARD), createAgentCardManifestFromDiscriminatorValue),
      "the manifest",
    );
    equal(card.description, "Updated through the instance.", "description (changed through the instance)");
  });

  await step("PATCH /agentCardManifests/{id} answers 200; collections are replaced whole", async () => {
    const card = present(
      await patch<AgentCardManifest>(
        MANIFEST,
        manifest(CARD),
        { version: "1.1.0", skills: [{ id: "summarise", displayName: "Summarise", tags: ["typescript"] }] },
        serializeAgentCardManifest,
        createAgentCardManifestFromDiscriminatorValue,
      ),
      "the manifest",
    );
    equal(card.version, "1.1.0", "version");
    equal(
      card.skills?.map((s) => s.id),
      ["summarise"],
      "skills",
    );
    equal(card.provider?.organization, "Contoso", "provider is kept");
  });

  await step("POST /agentCardManifests (Agentry's extension; Graph has no create)", async () => {
    const created = present(
      await post<AgentCardManifest>(
        MANIFESTS,
        {},
        { id: STANDALONE, displayName: "TS Standalone Card", ownerIds: [OWNER], defaultInputModes: ["text/plain"] },
        serializeAgentCardManifest,
        createAgentCardManifestFromDiscriminatorValue,
      ),
      "the manifest",
    );
    equal(created.id, STANDALONE, "id");
    equal(created.skills, [], "unset skills is []");
    check(isDate(created.createdDateTime), "createdDateTime is a Date", created.createdDateTime);
    equal(await count(`${MANIFESTS}/$count${COUNT}`, {}), baseManifests + 2, "$count");
  });

  await step("GET /agentCardManifests/{id} unknown is 404 AgentCardNotFound", async () => {
    await refused(
      get<AgentCardManifest>(`${MANIFEST}${ITEM}`, manifest("ts-no-such-card"), createAgentCardManifestFromDiscriminatorValue),
      404,
      "AgentCardNotFound",
    );
  });
}

async function collections(): Promise<void> {
  await step("POST /agentCollections (201, a server-assigned id)", async () => {
    const body: AgentCollection = {
      odataType: "#microsoft.graph.agentCollection",
      displayName: "TS Collection",
      description: "Made by the TypeScript session.",
      ownerIds: [OWNER],
      originatingStore: "TypeScript session",
    };
    const created = present(
      await post<AgentCollection>(COLLECTIONS, {}, body, serializeAgentCollection, createAgentCollectionFromDiscriminatorValue),
      "the collection",
    );
    collectionId = present(created.id, "id");
    check(/^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/.test(collectionId), "the id is a GUID", collectionId);
    equal(created.displayName, "TS Collection", "displayName");
    equal(created.ownerIds, [OWNER], "ownerIds");
    check(isDate(created.createdDateTime), "createdDateTime is a Date", created.createdDateTime);
    equal(created.members, undefined, "members are not expanded");
  });

  await step("GET /agentCollections/{id} with $expand=members", async () => {
    const got = present(
      await get<AgentCollection>(`${COLLECTION}${ITEM}`, collection(collectionId), createAgentCollectionFromDiscriminatorValue, {
        queryParameters: { expand: ["members"] },
      }),
      "the collection",
    );
    equal(got.members, [], "no members yet");
    equal(got.description, "Made by the TypeScript session.", "description");
  });

  await step("PATCH /agentCollections/{id} answers 204", async () => {
    equal(
      await patch<AgentCollection>(
        COLLECTION,
        collection(collectionId),
        { description: "Renamed purpose." },
        serializeAgentCollection,
        createAgentCollectionFromDiscriminatorValue,
      ),
      undefined,
      "the answer",
    );
    const got = present(
      await get<AgentCollection>(`${COLLECTION}${ITEM}`, collection(collectionId), createAgentCollectionFromDiscriminatorValue),
      "the collection",
    );
    equal(got.description, "Renamed purpose.", "description");
  });

  await step("POST /agentCollections/{id}/members with an instance (201)", async () => {
    const added = present(
      await post<AgentInstance>(
        MEMBERS,
        collection(collectionId),
        { id: ALPHA },
        serializeAgentInstance,
        createAgentInstanceFromDiscriminatorValue,
      ),
      "the member",
    );
    equal(added.id, ALPHA, "id");
    equal(added.displayName, "TS Alpha renamed", "displayName");
  });

  await step("POST /agentCollections/{id}/members/$ref (204; twice is 400)", async () => {
    const ref: ReferenceCreate = { odataId: `${origin}/beta/agentRegistry/agentInstances('${BETA}')` };
    equal(
      await post<ReferenceCreate>(
        `${MEMBERS}/$ref`,
        collection(collectionId),
        ref,
        serializeReferenceCreate,
        createAgentInstanceFromDiscriminatorValue,
      ),
      undefined,
      "the answer",
    );
    const again = await refused(
      post<ReferenceCreate>(
        `${MEMBERS}/$ref`,
        collection(collectionId),
        ref,
        serializeReferenceCreate,
        createAgentInstanceFromDiscriminatorValue,
      ),
      400,
      null,
    );
    check(/already exist/.test(again.errorEscaped?.message ?? ""), "the message says the reference exists", again.errorEscaped?.message);
  });

  await step("GET /agentCollections/{id}/members and members/$count", async () => {
    const page = present(
      await get<AgentInstanceCollectionResponse>(
        `${MEMBERS}${LIST}`,
        collection(collectionId),
        createAgentInstanceCollectionResponseFromDiscriminatorValue,
        { queryParameters: { orderby: ["displayName"], count: true } },
      ),
      "the members",
    );
    equal(
      page.value?.map((i) => i.id),
      [ALPHA, BETA],
      "members by displayName",
    );
    equal(page.odataCount, 2, "@odata.count");
    equal(await count(`${MEMBERS}/$count${COUNT}`, collection(collectionId)), 2, "members/$count");
  });

  await step("GET /agentCollections/{id}/members/{id} (and 404 for a non-member)", async () => {
    const member = present(
      await get<AgentInstance>(`${MEMBER}${ITEM}`, collection(collectionId, BETA), createAgentInstanceFromDiscriminatorValue),
      "the member",
    );
    equal(member.displayName, "TS Beta", "displayName");
    await refused(
      get<AgentInstance>(`${MEMBER}${ITEM}`, collection(collectionId, SEEDED_INSTANCE), createAgentInstanceFromDiscriminatorValue),
      404,
      "Request_ResourceNotFound",
    );
  });

  await step("GET /agentInstances/{id}/collections, collections/$count and collections/{id}", async () => {
    const page = present(
      await get<AgentCollectionCollectionResponse>(
        `${INSTANCE_COLLECTIONS}${LIST}`,
        instance(ALPHA),
        createAgentCollectionCollectionResponseFromDiscriminatorValue,
      ),
      "the collections",
    );
    equal(
      page.value?.map((c) => c.id),
      [collectionId],
      "the instance's collections",
    );
    equal(await count(`${INSTANCE_COLLECTIONS}/$count${COUNT}`, instance(ALPHA)), 1, "collections/$count");
    const one = present(
      await get<AgentCollection>(
        `${INSTANCE_COLLECTIONS}/{agentCollection%2Did}${ITEM}`,
        { ...instance(ALPHA), ...collection(collectionId) },
        createAgentCollectionFromDiscriminatorValue,
      ),
      "the collection",
    );
    equal(one.displayName, "TS Collection", "displayName");
    const seeded = present(
      await get<AgentCollectionCollectionResponse>(
        `${INSTANCE_COLLECTIONS}${LIST}`,
        instance(SEEDED_INSTANCE),
        createAgentCollectionCollectionResponseFromDiscriminatorValue,
        { queryParameters: { orderby: ["displayName"] } },
      ),
      "the seeded instance's collections",
    );
    equal(
      seeded.value?.map((c) => c.displayName),
      ["Global", "HR agents"],
      "the seeded instance's collections",
    );
  });

  await step("the documented long form: /agentInstances/{id}/collections/{id}/members...", async () => {
    const via = `${INSTANCE_COLLECTIONS}/{agentCollection%2Did}/members`;
    const path = (member?: string): Path => ({
      ...instance(ALPHA),
      ...collection(collectionId),
      ...(member === undefined ? {} : { "member%2Did": member }),
    });
    const page = present(
      await get<AgentInstanceCollectionResponse>(`${via}${LIST}`, path(), createAgentInstanceCollectionResponseFromDiscriminatorValue, {
        queryParameters: { count: true },
      }),
      "the members",
    );
    equal(page.odataCount, 2, "@odata.count");
    const member = present(
      await get<AgentInstance>(`${via}/{member%2Did}${ITEM}`, path(BETA), createAgentInstanceFromDiscriminatorValue),
      "the member",
    );
    equal(member.id, BETA, "id");
    await remove(`${via}/{member%2Did}/$ref`, path(BETA));
    await remove(`${via}/{member%2Did}`, path(ALPHA));
    equal(await count(`${MEMBERS}/$count${COUNT}`, collection(collectionId)), 0, "members/$count");
    await post<ReferenceCreate>(
      `${via}/$ref`,
      path(),
      { odataId: `${origin}/beta/agentRegistry/agentInstances('${BETA}')` },
      serializeReferenceCreate,
      createAgentInstanceFromDiscriminatorValue,
    );
    const added = present(
      await post<AgentInstance>(via, path(), { id: ALPHA }, serializeAgentInstance, createAgentInstanceFromDiscriminatorValue),
      "the member",
    );
    equal(added.id, ALPHA, "id");
    equal(await count(`${MEMBERS}/$count${COUNT}`, collection(collectionId)), 2, "members/$count");
  });

  await step("DELETE /agentCollections/{id}/members/{id} and members/{id}/$ref (204)", async () => {
    await remove(MEMBER, collection(collectionId, ALPHA));
    await remove(`${MEMBER}/$ref`, collection(collectionId, BETA));
    equal(await count(`${MEMBERS}/$count${COUNT}`, collection(collectionId)), 0, "members/$count");
  });

  await step("the reserved collections: Global is readable, immutable, its name reserved", async () => {
    const global = present(
      await get<AgentCollection>(`${COLLECTION}${ITEM}`, collection(GLOBAL), createAgentCollectionFromDiscriminatorValue),
      "Global",
    );
    equal(global.displayName, "Global", "displayName");
    const forbidden = await refused(
      patch<AgentCollection>(
        COLLECTION,
        collection(GLOBAL),
        { description: "mine" },
        serializeAgentCollection,
        createAgentCollectionFromDiscriminatorValue,
      ),
      403,
      null,
    );
    equal(forbidden.errorEscaped?.innerError?.additionalData?.["code"], "collectionImmutable", "innerError.code");
    await refused(
      post<AgentCollection>(
        COLLECTIONS,
        {},
        { displayName: " quarantined ", ownerIds: [OWNER] },
        serializeAgentCollection,
        createAgentCollectionFromDiscriminatorValue,
      ),
      409,
      "Conflict",
    );
  });

  await step("GET /agentCollections with $filter, and $count", async () => {
    const page = present(
      await get<AgentCollectionCollectionResponse>(
        `${COLLECTIONS}${LIST}`,
        {},
        createAgentCollectionCollectionResponseFromDiscriminatorValue,
        { queryParameters: { filter: "displayName eq 'ts collection'" } },
      ),
      "the page",
    );
    equal(
      page.value?.map((c) => c.id),
      [collectionId],
      "displayName compares ignoring case",
    );
    equal(await count(`${COLLECTIONS}/$count${COUNT}`, {}), baseCollections + 1, "$count");
  });

  await step("DELETE /agentCollections/{id} (then 404 AgentCollectionNotFound)", async () => {
    await remove(COLLECTION, collection(collectionId));
    await refused(
      get<AgentCollection>(`${COLLECTION}${ITEM}`, collection(collectionId), createAgentCollectionFromDiscriminatorValue),
      404,
      "AgentCollectionNotFound",
    );
  });
}

async function errorsAndQueries(): Promise<void> {
  await step("404 AgentNotFound as an ODataError (innerError, request ids)", async () => {
    const clientRequestId = "5e1a7c42-0000-4000-8000-00000000c0de";
    const e = await refused(
      get<AgentInstance>(`${INSTANCE}${ITEM}`, instance("ts-no-such-instance"), createAgentInstanceFromDiscriminatorValue, {
        headers: { "client-request-id": clientRequestId },
      }),
      404,
      "AgentNotFound",
    );
    const inner = present(e.errorEscaped?.innerError, "innerError");
    equal(inner.clientRequestId, clientRequestId, "innerError.client-request-id");
    equal(inner.requestId, e.responseHeaders?.["request-id"]?.[0], "innerError.request-id is the request-id header");
    check(isDate(inner.date), "innerError.date is a Date", inner.date);
  });

  await step("409 AgentAlreadyExists for a taken id", async () => {
    await refused(
      post<AgentInstance>(
        INSTANCES,
        {},
        { id: BETA, displayName: "Again", ownerIds: [OWNER] },
        serializeAgentInstance,
        createAgentInstanceFromDiscriminatorValue,
      ),
      409,
      "AgentAlreadyExists",
    );
  });

  await step("400 ValidationError: no displayName, an unknown property", async () => {
    await refused(
      post<AgentInstance>(INSTANCES, {}, { ownerIds: [OWNER] }, serializeAgentInstance, createAgentInstanceFromDiscriminatorValue),
      400,
      "ValidationError",
    );
    await refused(
      post<AgentInstance>(
        INSTANCES,
        {},
        { displayName: "TS Colour", ownerIds: [OWNER], additionalData: { colour: "blue" } },
        serializeAgentInstance,
        createAgentInstanceFromDiscriminatorValue,
      ),
      400,
      "ValidationError",
    );
  });

  await step("400 BadRequest: a malformed $filter, $top over 999", async () => {
    const bad = await refused(
      get<AgentInstanceCollectionResponse>(`${INSTANCES}${LIST}`, {}, createAgentInstanceCollectionResponseFromDiscriminatorValue, {
        queryParameters: { filter: "displayName eq" },
      }),
      400,
      "BadRequest",
    );
    check(/\$filter/.test(bad.errorEscaped?.message ?? ""), "the message names $filter", bad.errorEscaped?.message);
    await refused(
      get<AgentInstanceCollectionResponse>(`${INSTANCES}${LIST}`, {}, createAgentInstanceCollectionResponseFromDiscriminatorValue, {
        queryParameters: { top: 1000 },
      }),
      400,
      "BadRequest",
    );
  });

  await step("$search needs ConsistencyLevel: eventual", async () => {
    const query = { queryParameters: { search: '"displayName:TS"', select: ["id"] } };
    await refused(
      get<AgentInstanceCollectionResponse>(`${INSTANCES}${LIST}`, {}, createAgentInstanceCollectionResponseFromDiscriminatorValue, query),
      400,
      "Request_UnsupportedQuery",
    );
    const page = present(
      await get<AgentInstanceCollectionResponse>(`${INSTANCES}${LIST}`, {}, createAgentInstanceCollectionResponseFromDiscriminatorValue, {
        ...query,
        headers: { ConsistencyLevel: "eventual" },
      }),
      "the page",
    );
    equal(page.value?.map((i) => i.id).sort(), [ALPHA, BETA].sort(), "instances found");
  });
}

async function paging(): Promise<void> {
  await step("create seven instances to page through", async () => {
    for (const [n, id] of PAGED.entries()) {
      await post<AgentInstance>(
        INSTANCES,
        {},
        { id, displayName: `TS Page ${n + 1}`, ownerIds: [OWNER] },
        serializeAgentInstance,
        createAgentInstanceFromDiscriminatorValue,
      );
    }
  });

  const firstPage = async () =>
    present(
      await get<AgentInstanceCollectionResponse>(`${INSTANCES}${LIST}`, {}, createAgentInstanceCollectionResponseFromDiscriminatorValue, {
        queryParameters: {
          filter: "startswith(displayName,'TS Page')",
          orderby: ["displayName desc"],
          top: 2,
          count: true,
          select: ["id", "displayName"],
        },
      }),
      "the first page",
    );
  const pageFactory = createAgentInstanceCollectionResponseFromDiscriminatorValue as unknown as ParsableFactory<
    PageCollection<AgentInstance>
  >;
  const expected = [...PAGED].reverse();

  await step("PageIterator follows @odata.nextLink ($top=2 over 7): each once, in order", async () => {
    const page = await firstPage();
    equal(page.value?.length, 2, "the first page's size");
    equal(page.odataCount, 7, "@odata.count");
    const next = present(page.odataNextLink, "@odata.nextLink");
    check(next.startsWith(`${origin}/beta/agentRegistry/agentInstances?`), "the next link is absolute", next);
    const seen: string[] = [];
    const iterator = new PageIterator<AgentInstance>(
      adapter,
      page as PageCollection<AgentInstance>,
      (item) => {
        seen.push(present(item.id, "id"));
        return true;
      },
      pageFactory,
      errors,
    );
    await iterator.iterate();
    equal(iterator.getPagingState(), "Complete", "the paging state");
    equal(seen, expected, "the instances yielded");
  });

  await step("PageIterator paused after three and resumed: still each once", async () => {
    const seen: string[] = [];
    const iterator = new PageIterator<AgentInstance>(
      adapter,
      (await firstPage()) as PageCollection<AgentInstance>,
      (item) => {
        seen.push(present(item.id, "id"));
        return seen.length !== 3;
      },
      pageFactory,
      errors,
    );
    await iterator.iterate();
    equal(iterator.getPagingState(), "Paused", "the paging state after three");
    equal(seen.length, 3, "items before the pause");
    await iterator.resume();
    equal(iterator.getPagingState(), "Complete", "the paging state");
    equal(seen, expected, "the instances yielded");
  });
}

/** The status and one header of a batch response (msgraph-sdk-core reads headers as untyped JSON). */
function batchHeader(response: BatchResponse | undefined, name: string): string | undefined {
  const headers = response?.headers as unknown as UntypedNode | undefined;
  const value = untypedValue(headers, name);
  return value && isUntypedString(value) ? value.getValue() : undefined;
}

async function batching(): Promise<void> {
  // msgraph-sdk-core reads each response's body as base64 (getByteArrayValue),
  // so a JSON body (an object, as Graph sends it) reads as undefined and
  // getParsableResponseById gives nothing: statuses and headers are checked.
  await step("POST /$batch with BatchRequestContent: reads, a delete and a failing request", async () => {
    await post<AgentInstance>(
      INSTANCES,
      {},
      { id: "ts-batch-doomed", displayName: "TS Doomed", ownerIds: [OWNER] },
      serializeAgentInstance,
      createAgentInstanceFromDiscriminatorValue,
    );
    const batch = new BatchRequestContent(adapter, errors);
    batch.addBatchRequest(
      request(HttpMethod.GET, `${INSTANCE}${ITEM}`, instance(PAGED[0]!), { queryParameters: { select: ["id", "displayName"] } }),
      "get",
    );
    batch.addBatchRequest(request(HttpMethod.GET, `${INSTANCE}${ITEM}`, instance("ts-no-such-instance")), "missing");
    batch.addBatchRequest(request(HttpMethod.GET, `${INSTANCES}/$count${COUNT}`, {}, undefined, "text/plain;q=0.9"), "count");
    batch.addBatchRequest(request(HttpMethod.DELETE, INSTANCE, instance("ts-batch-doomed")), "delete");
    batch.addBatchRequest(request(HttpMethod.GET, `${MEMBERS}${LIST}`, collection(GLOBAL), { queryParameters: { top: 1 } }), "members");
    const response = present(await batch.postAsync(), "the batch response");
    const statuses = Object.fromEntries(await response.getResponsesStatusCodes());
    equal(statuses, { get: 200, missing: 404, count: 200, delete: 204, members: 200 }, "the statuses");
    for (const id of ["get", "missing", "delete"]) {
      check(
        /^[0-9a-f-]{36}$/.test(batchHeader(response.getResponseById(id), "request-id") ?? ""),
        `response ${id} has its request-id`,
        response.getResponseById(id)?.headers,
      );
    }
    equal(batchHeader(response.getResponseById("missing"), "content-type")?.startsWith("application/json"), true, "the failure is JSON");
    await refused(
      get<AgentInstance>(`${INSTANCE}${ITEM}`, instance("ts-batch-doomed"), createAgentInstanceFromDiscriminatorValue),
      404,
      "AgentNotFound",
    );
  });

  await step("POST /$batch: a request whose dependency failed is 424", async () => {
    const batch = new BatchRequestContent(adapter, errors);
    batch.addBatchRequest(request(HttpMethod.GET, `${INSTANCE}${ITEM}`, instance("ts-no-such-instance")), "first");
    const second = batch.addBatchRequest(request(HttpMethod.GET, `${INSTANCE}${ITEM}`, instance(PAGED[0]!)), "second");
    second.dependsOn = ["first"];
    const response = present(await batch.postAsync(), "the batch response");
    equal(Object.fromEntries(await response.getResponsesStatusCodes()), { first: 404, second: 424 }, "the statuses");
  });

  await step("POST /$batch with BatchRequestContentCollection (25 requests, two batches)", async () => {
    const all = new BatchRequestContentCollection(adapter, errors, 20);
    const ids = Array.from({ length: 25 }, (_, n) => PAGED[n % PAGED.length]!);
    ids.forEach((id, n) =>
      all.addBatchRequest(request(HttpMethod.GET, `${INSTANCE}${ITEM}`, instance(id), { queryParameters: { select: ["id"] } }), `r${n}`),
    );
    equal(all.getBatchResponseContents().length, 2, "batches");
    const response = present(await all.postAsync(), "the batch responses");
    equal(response.batchResponseContent.length, 2, "batch responses");
    const statuses = await response.getResponsesStatusCodes();
    equal(statuses.size, 25, "responses");
    check(
      [...statuses.values()].every((s) => s === 200),
      "every response is 200",
      Object.fromEntries(statuses),
    );
  });

  // msgraph-sdk-core 1.0.0-preview.17 cannot batch a write: it never copies a
  // request's headers into its step, sends the body base64-encoded, and a
  // step given headers or a JSON body by hand is written as {} (its serializer
  // passes plain objects to writeObjectValue without a serializer). Graph
  // refuses a step with a body but no Content-Type; so must the server.
  await step("POST /$batch: a write step as msgraph-sdk-core builds it (no Content-Type) is refused", async () => {
    const batch = new BatchRequestContent(adapter, errors);
    batch.addBatchRequest(
      withBody(
        request(HttpMethod.POST, INSTANCES, {}),
        { id: "ts-untyped-body", displayName: "TS Untyped", ownerIds: [OWNER] },
        serializeAgentInstance,
      ),
      "write",
    );
    let refusedHow: string;
    try {
      const response = present(await batch.postAsync(), "the batch response");
      const status = response.getResponseById("write")?.status ?? 0;
      check(status >= 400 && status < 500, "the step is refused", status);
      refusedHow = `inside the batch (${status})`;
    } catch (e) {
      check(isODataError(e) && e.responseStatusCode === 400, "or the whole batch is a 400", describe(e));
      refusedHow = "as a whole (400)";
    }
    await refused(
      get<AgentInstance>(`${INSTANCE}${ITEM}`, instance("ts-untyped-body"), createAgentInstanceFromDiscriminatorValue),
      404,
      "AgentNotFound",
    );
    console.log(`      refused ${refusedHow}`);
  });
}

async function deletion(): Promise<void> {
  await step("DELETE /agentInstances/{id} removes memberships and keeps the manifest", async () => {
    const holder = present(
      await post<AgentCollection>(
        COLLECTIONS,
        {},
        { displayName: "TS Holder", ownerIds: [OWNER] },
        serializeAgentCollection,
        createAgentCollectionFromDiscriminatorValue,
      ),
      "a collection",
    );
    const holderId = present(holder.id, "id");
    await post<ReferenceCreate>(
      `${MEMBERS}/$ref`,
      collection(holderId),
      { odataId: `agentInstances('${BETA}')` },
      serializeReferenceCreate,
      createAgentInstanceFromDiscriminatorValue,
    );
    equal(await count(`${MEMBERS}/$count${COUNT}`, collection(holderId)), 1, "members/$count before");
    await remove(INSTANCE, instance(BETA));
    await refused(
      get<AgentInstance>(`${INSTANCE}${ITEM}`, instance(BETA), createAgentInstanceFromDiscriminatorValue),
      404,
      "AgentNotFound",
    );
    equal(await count(`${MEMBERS}/$count${COUNT}`, collection(holderId)), 0, "members/$count after");
    await remove(COLLECTION, collection(holderId));
    await remove(INSTANCE, instance(ALPHA));
    const card = present(
      await get<AgentCardManifest>(`${MANIFEST}${ITEM}`, manifest(CARD), createAgentCardManifestFromDiscriminatorValue),
      "the manifest",
    );
    equal(card.id, CARD, "the manifest is kept");
  });

  await step("DELETE /agentCardManifests/{id} (Agentry's extension): 409 while linked, then 204", async () => {
    await post<AgentInstance>(
      INSTANCES,
      {},
      {
        id: "ts-linker",
        displayName: "TS Linker",
        ownerIds: [OWNER],
        additionalData: { "agentCardManifest@odata.bind": `agentCardManifests/${STANDALONE}` },
      },
      serializeAgentInstance,
      createAgentInstanceFromDiscriminatorValue,
    );
    await refused(remove(MANIFEST, manifest(STANDALONE)), 409, "Conflict");
    await remove(INSTANCE, instance("ts-linker"));
    await remove(MANIFEST, manifest(STANDALONE));
    await remove(MANIFEST, manifest(CARD));
    await refused(
      get<AgentCardManifest>(`${MANIFEST}${ITEM}`, manifest(CARD), createAgentCardManifestFromDiscriminatorValue),
      404,
      "AgentCardNotFound",
    );
    equal(await count(`${MANIFESTS}/$count${COUNT}`, {}), baseManifests, "$count");
  });
}

async function registrations(): Promise<void> {
  const id = "6f1e2d3c-0000-4000-8000-00000000ab01";
  const created = new Date("2025-02-15T10:00:00.123Z");
  const modified = new Date("2025-02-16T10:00:00Z");
  const card = createUntypedObject({
    name: createUntypedString("TS Travel Agent"),
    version: createUntypedString("1.0.0"),
    protocolVersion: createUntypedString("0.3.0"),
    url: createUntypedString("https://travel.contoso.example/a2a"),
    price: createUntypedNumber(12.5),
    skills: createUntypedArray([createUntypedObject({ id: createUntypedString("book"), name: createUntypedString("Book") })]),
  });
  const body = (): AgentRegistration => ({
    id,
    displayName: "TS Travel Agent",
    description: "Books flights and hotels",
    ownerIds: [OWNER],
    createdBy: OWNER,
    sourceAgentId: "ts-travel-v1",
    originatingStore: "ContosoAgentStore",
    sourceCreatedDateTime: created,
    sourceLastModifiedDateTime: modified,
    agentCard: card,
  });

  await step("POST /copilot/agentRegistrations (201; dates and the untyped agentCard)", async () => {
    const got = present(
      await post<AgentRegistration>(REGISTRATIONS, {}, body(), serializeAgentRegistration, createAgentRegistrationFromDiscriminatorValue),
      "the registration",
    );
    equal(got.id, id, "id");
    equal(got.sourceCreatedDateTime?.getTime(), created.getTime(), "sourceCreatedDateTime");
    equal(got.sourceLastModifiedDateTime?.getTime(), modified.getTime(), "sourceLastModifiedDateTime");
    const agentCard = present(got.agentCard, "agentCard");
    check(isUntypedObject(agentCard), "agentCard is an untyped object", agentCard);
    equal((untypedValue(agentCard, "url") as UntypedNode | undefined)?.getValue(), "https://travel.contoso.example/a2a", "agentCard.url");
    const price = untypedValue(agentCard, "price");
    check(price !== undefined && isUntypedNumber(price) && price.getValue() === 12.5, "agentCard.price", price?.getValue());
    const skills = untypedValue(agentCard, "skills");
    check(skills !== undefined && isUntypedArray(skills) && skills.getValue().length === 1, "agentCard.skills", skills?.getValue());
  });

  await step("GET /copilot/agentRegistrations/{id} with $select", async () => {
    const got = present(
      await get<AgentRegistration>(`${REGISTRATION}${ITEM}`, registration(id), createAgentRegistrationFromDiscriminatorValue, {
        queryParameters: { select: ["id", "displayName", "ownerIds"] },
      }),
      "the registration",
    );
    equal([got.id, got.displayName, got.ownerIds], [id, "TS Travel Agent", [OWNER]], "selected properties");
    equal(got.description, undefined, "a property not selected");
  });

  await step("PATCH /copilot/agentRegistrations/{id} (200 with an empty body)", async () => {
    const inspect = new HeadersInspectionOptions({ inspectResponseHeaders: true });
    // Graph answers this PATCH 200 with no body; Kiota's send() would try to
    // deserialise it, so the call is made as for an answer without content.
    await adapter.sendNoResponseContent(
      withBody(
        request(HttpMethod.PATCH, REGISTRATION, registration(id), { inspect }),
        { description: "Books trips" } as AgentRegistration,
        serializeAgentRegistration,
      ),
      errors,
    );
    check(header(inspect, "etag")?.startsWith('W/"'), "the new ETag", header(inspect, "etag"));
    const got = present(
      await get<AgentRegistration>(`${REGISTRATION}${ITEM}`, registration(id), createAgentRegistrationFromDiscriminatorValue),
      "the registration",
    );
    equal(got.description, "Books trips", "description");
    equal(got.displayName, "TS Travel Agent", "displayName is kept");
  });

  await step("GET /copilot/agentRegistrations with $filter and $count, and /$count", async () => {
    const page = present(
      await get<CollectionOf<AgentRegistration>>(`${REGISTRATIONS}${LIST}`, {}, createAgentRegistrationCollectionResponse, {
        queryParameters: { filter: "sourceAgentId eq 'ts-travel-v1'", count: true },
      }),
      "the page",
    );
    equal(
      page.value?.map((r) => r.id),
      [id],
      "registrations",
    );
    equal(page.odataCount, 1, "@odata.count");
    check(isDate(page.value?.[0]?.sourceCreatedDateTime), "items' dates are Dates", page.value?.[0]?.sourceCreatedDateTime);
    equal(
      await count(`${REGISTRATIONS}/$count${COUNT}`, {}, { queryParameters: { filter: "ownerIds/any(o: o eq '" + OWNER + "')" } }),
      1,
      "$count",
    );
  });

  await step("POST /copilot/agentRegistrations errors: 409 for a taken sourceAgentId, 400 without createdBy", async () => {
    const taken = await refused(
      post<AgentRegistration>(
        REGISTRATIONS,
        {},
        { ...body(), id: undefined },
        serializeAgentRegistration,
        createAgentRegistrationFromDiscriminatorValue,
      ),
      409,
      "Conflict",
    );
    check((taken.errorEscaped?.message ?? "").includes(id), "the message names the holder", taken.errorEscaped?.message);
    await refused(
      post<AgentRegistration>(
        REGISTRATIONS,
        {},
        { ...body(), id: undefined, sourceAgentId: "ts-other", createdBy: undefined },
        serializeAgentRegistration,
        createAgentRegistrationFromDiscriminatorValue,
      ),
      400,
      null,
    );
  });

  await step("DELETE /copilot/agentRegistrations/{id} (then 404)", async () => {
    await remove(REGISTRATION, registration(id));
    await refused(
      get<AgentRegistration>(`${REGISTRATION}${ITEM}`, registration(id), createAgentRegistrationFromDiscriminatorValue),
      404,
      null,
    );
  });
}

async function packages(): Promise<void> {
  await step("GET /copilot/admin/catalog/packages lists the agents ($count, enums, dates)", async () => {
    const page = present(
      await get<CollectionOf<CopilotPackage>>(`${PACKAGES}${LIST}`, {}, createCopilotPackageCollectionResponse, {
        queryParameters: { count: true, orderby: ["displayName"] },
      }),
      "the page",
    );
    equal(
      page.value?.map((p) => p.displayName),
      ["Contoso Travel Agent", "Expense Bot"],
      "packages holding an agent",
    );
    equal(page.odataCount, 2, "@odata.count");
    const travel = present(page.value?.[0], "the travel package");
    equal(travel.type, PackageTypeObject.Custom, "type");
    equal(travel.availableTo, PackageStatusObject.None, "availableTo");
    equal(travel.elementTypes, ["DeclarativeAgent"], "elementTypes");
    check(isDate(travel.lastModifiedDateTime), "lastModifiedDateTime is a Date", travel.lastModifiedDateTime);
    equal(page.value?.[1]?.isBlocked, true, "the seeded blocked package");
  });

  await step("GET /copilot/admin/catalog/packages with $filter on elementTypes, and /$count", async () => {
    const page = present(
      await get<CollectionOf<CopilotPackage>>(`${PACKAGES}${LIST}`, {}, createCopilotPackageCollectionResponse, {
        queryParameters: { filter: "elementTypes/any(t: t eq 'OfficeAddIns')" },
      }),
      "the page",
    );
    equal(
      page.value?.map((p) => p.id),
      [ADDIN],
      "the add-in",
    );
    equal(page.value?.[0]?.availableTo, PackageStatusObject.All, "availableTo");
    equal(await count(`${PACKAGES}/$count${COUNT}`, {}), 2, "$count");
  });

  await step("GET /copilot/admin/catalog/packages/{id} answers the detail", async () => {
    const detail = present(
      await get<CopilotPackageDetail>(`${PACKAGE}${ITEM}`, pkg(TRAVEL), createCopilotPackageDetailFromDiscriminatorValue),
      "the package",
    );
    equal(detail.longDescription, "Searches fares and rooms, applies the travel policy and books on approval.", "longDescription");
    equal(detail.categories, ["Productivity"], "categories");
    equal(detail.activeUsers, 42, "activeUsers");
    equal(detail.allowedUsersAndGroups, [], "allowedUsersAndGroups");
    equal(detail.elementDetails?.[0]?.elements?.[0]?.id, "travelAgent", "elementDetails[0].elements[0].id");
    check(
      isDate(detail.createdDateTime) && detail.createdDateTime.toISOString() === "2026-01-12T09:30:00.000Z",
      "createdDateTime",
      detail.createdDateTime,
    );
  });

  await step("PATCH /copilot/admin/catalog/packages/{id} (204; availableTo follows)", async () => {
    const change: CopilotPackageDetail = {
      allowedUsersAndGroups: [{ resourceId: OTHER_OWNER, resourceType: AccessEntityTypeObject.User }],
    };
    equal(
      await patch<CopilotPackageDetail>(
        PACKAGE,
        pkg(TRAVEL),
        change,
        serializeCopilotPackageDetail,
        createCopilotPackageDetailFromDiscriminatorValue,
      ),
      undefined,
      "the answer",
    );
    const detail = present(
      await get<CopilotPackageDetail>(`${PACKAGE}${ITEM}`, pkg(TRAVEL), createCopilotPackageDetailFromDiscriminatorValue),
      "the package",
    );
    equal(detail.availableTo, PackageStatusObject.Some, "availableTo");
    equal(
      detail.allowedUsersAndGroups?.map((a) => [a.resourceId, a.resourceType]),
      [[OTHER_OWNER, "user"]],
      "allowedUsersAndGroups",
    );
    await refused(
      patch<CopilotPackageDetail>(
        PACKAGE,
        pkg(TRAVEL),
        { displayName: "Renamed" },
        serializeCopilotPackageDetail,
        createCopilotPackageDetailFromDiscriminatorValue,
      ),
      400,
      null,
    );
  });

  await step("POST .../packages/{id}/block, unblock and reassign (204)", async () => {
    await adapter.sendNoResponseContent(request(HttpMethod.POST, `${PACKAGE}/block`, pkg(TRAVEL)), errors);
    equal(
      (await get<CopilotPackageDetail>(`${PACKAGE}${ITEM}`, pkg(TRAVEL), createCopilotPackageDetailFromDiscriminatorValue))?.isBlocked,
      true,
      "isBlocked after block",
    );
    await adapter.sendNoResponseContent(request(HttpMethod.POST, `${PACKAGE}/unblock`, pkg(TRAVEL)), errors);
    equal(
      (await get<CopilotPackageDetail>(`${PACKAGE}${ITEM}`, pkg(TRAVEL), createCopilotPackageDetailFromDiscriminatorValue))?.isBlocked,
      false,
      "isBlocked after unblock",
    );
    await adapter.sendNoResponseContent(
      withBody(
        request(HttpMethod.POST, `${PACKAGE}/reassign`, pkg(TRAVEL)),
        { userId: OTHER_OWNER } as ReassignPostRequestBody,
        serializeReassignPostRequestBody,
      ),
      errors,
    );
    equal(
      (await get<CopilotPackageDetail>(`${PACKAGE}${ITEM}`, pkg(TRAVEL), createCopilotPackageDetailFromDiscriminatorValue))?.ownerId,
      OTHER_OWNER,
      "ownerId after reassign",
    );
  });

  await step("GET /copilot/admin/catalog/packages/{id} unknown is 404", async () => {
    await refused(
      get<CopilotPackageDetail>(`${PACKAGE}${ITEM}`, pkg("P_no-such-package"), createCopilotPackageDetailFromDiscriminatorValue),
      404,
      null,
    );
  });
}

async function copilotSettings(): Promise<void> {
  const PINNING = "microsoft.copilot.copilotchatpinning";
  await step("GET and PATCH /copilot/admin/policySettings/{id}", async () => {
    const got = present(
      await get<CopilotPolicySetting>(`${POLICY_SETTING}${ITEM}`, setting(PINNING), createCopilotPolicySettingFromDiscriminatorValue),
      "the setting",
    );
    equal([got.id, got.value], [PINNING, "1"], "the seeded setting");
    const policy = present(got.policyId, "policyId");
    const updated = present(
      await patch<CopilotPolicySetting>(
        POLICY_SETTING,
        setting(PINNING),
        { value: "0" },
        serializeCopilotPolicySetting,
        createCopilotPolicySettingFromDiscriminatorValue,
      ),
      "the setting",
    );
    equal([updated.value, updated.policyId], ["0", policy], "value and policyId");
  });

  await step("policySettings errors: 404 notFound, 422 for a group-scoped setting", async () => {
    await refused(
      get<CopilotPolicySetting>(
        `${POLICY_SETTING}${ITEM}`,
        setting("microsoft.copilot.nope"),
        createCopilotPolicySettingFromDiscriminatorValue,
      ),
      404,
      "notFound",
    );
    const e = await refused(
      get<CopilotPolicySetting>(
        `${POLICY_SETTING}${ITEM}`,
        setting("microsoft.copilot.imagegeneration"),
        createCopilotPolicySettingFromDiscriminatorValue,
      ),
      422,
      "unprocessableEntity",
    );
    equal(e.errorEscaped?.innerError?.additionalData?.["code"], "groupScopedSettingNotSupported", "innerError.code");
  });

  await step("GET and PATCH /copilot/admin/settings/limitedMode", async () => {
    const got = present(
      await get<CopilotAdminLimitedMode>(`${LIMITED_MODE}${ITEM}`, {}, createCopilotAdminLimitedModeFromDiscriminatorValue),
      "limitedMode",
    );
    equal(got.isEnabledForGroup, true, "the seeded isEnabledForGroup");
    const updated = present(
      await patch<CopilotAdminLimitedMode>(
        LIMITED_MODE,
        {},
        { isEnabledForGroup: false, groupId: null },
        serializeCopilotAdminLimitedMode,
        createCopilotAdminLimitedModeFromDiscriminatorValue,
      ),
      "limitedMode",
    );
    equal([updated.isEnabledForGroup, updated.groupId], [false, undefined], "isEnabledForGroup and groupId (null)");
  });

  await step("GET and PATCH /copilot/settings/people/enhancedPersonalization", async () => {
    const got = present(
      await get<EnhancedPersonalizationSetting>(
        `${PERSONALIZATION}${ITEM}`,
        {},
        createEnhancedPersonalizationSettingFromDiscriminatorValue,
      ),
      "enhancedPersonalization",
    );
    equal(got.isEnabledInOrganization, true, "the seeded isEnabledInOrganization");
    const group = "6a1f0b52-3c4d-4e5f-8a9b-0c1d2e3f4a5b";
    const updated = present(
      await patch<EnhancedPersonalizationSetting>(
        PERSONALIZATION,
        {},
        { isEnabledInOrganization: false, disabledForGroup: group },
        serializeEnhancedPersonalizationSetting,
        createEnhancedPersonalizationSettingFromDiscriminatorValue,
      ),
      "enhancedPersonalization",
    );
    equal([updated.isEnabledInOrganization, updated.disabledForGroup], [false, group], "the settings");
    await refused(
      patch<EnhancedPersonalizationSetting>(
        PERSONALIZATION,
        {},
        { disabledForGroup: "g" },
        serializeEnhancedPersonalizationSetting,
        createEnhancedPersonalizationSettingFromDiscriminatorValue,
      ),
      400,
      "badRequest",
    );
  });
}

await registry();
await instances();
await manifests();
await collections();
await errorsAndQueries();
await paging();
await batching();
await deletion();
await registrations();
await packages();
await copilotSettings();

console.log(`typescript: ${passed} passed, ${failures.length} failed`);
if (failures.length > 0) {
  console.log(`failed: ${failures.join("; ")}`);
  process.exit(1);
}
