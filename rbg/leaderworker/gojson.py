"""Go's JSON encoding of upstream LeaderWorkerSet types: the bytes upstream's revision hash is taken over."""

from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass
from decimal import Decimal
from fractions import Fraction
from functools import cache
from typing import Any

Obj = dict[str, Any]


#
# Upstream (sigs.k8s.io/lws pkg/utils/revision) stores a revision as a strategic-merge patch that replaces
# spec.leaderWorkerTemplate and spec.networkConfig, serialized by Go: the set is decoded into Go structs
# and encoded again (struct fields always written, omitempty zero values dropped, quantities canonical),
# then re-marshalled from a generic map (keys sorted). The template-revision-hash label is FNV-32 of those
# bytes, printed in decimal and mapped onto a vowel-free alphabet. The same computation here gives the
# same label and ControllerRevision as upstream for the same stored object, so either controller can take
# over the other's sets without rolling them.

#: Go JSON facts of upstream's types (sigs.k8s.io/lws v0.9.0, k8s.io/api v0.36.2), as printed by
#: `cd hack/lws-hash && go run . -types` (hack/lws-hash/go-types.txt; a line starting with spaces
#: continues the one above). `field=KIND[*][!][~]`, KIND: s string, b bool, i integer, Q Quantity,
#: I IntOrString, T Time, or a struct type; `[KIND` a slice, `{KIND` a map; `*` a pointer, `!` not
#: omitempty, `~` omitzero. A field not listed is a non-pointer omitempty string, bool, integer,
#: []string or map[string]string: Go drops its zero value and keeps the rest as it is.
GO_TYPES = """\
AWSElasticBlockStoreVolumeSource: volumeID=s!
Affinity: nodeAffinity=NodeAffinity* podAffinity=PodAffinity* podAntiAffinity=PodAntiAffinity*
AppArmorProfile: type=s! localhostProfile=s*
AzureDiskVolumeSource: diskName=s! diskURI=s! cachingMode=s* fsType=s* readOnly=b* kind=s*
AzureFileVolumeSource: secretName=s! shareName=s!
CSIVolumeSource: driver=s! readOnly=b* fsType=s* nodePublishSecretRef=LocalObjectReference*
CephFSVolumeSource: monitors=[s! secretRef=LocalObjectReference*
CinderVolumeSource: volumeID=s! secretRef=LocalObjectReference*
ClusterTrustBundleProjection: name=s* signerName=s* labelSelector=LabelSelector* optional=b* path=s!
ConfigMapEnvSource: optional=b*
ConfigMapKeySelector: key=s! optional=b*
ConfigMapProjection: items=[KeyToPath optional=b*
ConfigMapVolumeSource: items=[KeyToPath defaultMode=i* optional=b*
Container: name=s! ports=[ContainerPort envFrom=[EnvFromSource env=[EnvVar
    resources=ResourceRequirements resizePolicy=[ContainerResizePolicy restartPolicy=s*
    restartPolicyRules=[ContainerRestartRule volumeMounts=[VolumeMount volumeDevices=[VolumeDevice
    livenessProbe=Probe* readinessProbe=Probe* startupProbe=Probe* lifecycle=Lifecycle*
    securityContext=SecurityContext*
ContainerPort: containerPort=i!
ContainerResizePolicy: resourceName=s! restartPolicy=s!
ContainerRestartRule: exitCodes=ContainerRestartRuleOnExitCodes*
ContainerRestartRuleOnExitCodes: values=[i
DownwardAPIProjection: items=[DownwardAPIVolumeFile
DownwardAPIVolumeFile: path=s! fieldRef=ObjectFieldSelector* resourceFieldRef=ResourceFieldSelector*
    mode=i*
DownwardAPIVolumeSource: items=[DownwardAPIVolumeFile defaultMode=i*
EmptyDirVolumeSource: sizeLimit=Q*
EnvFromSource: configMapRef=ConfigMapEnvSource* secretRef=SecretEnvSource*
EnvVar: name=s! valueFrom=EnvVarSource*
EnvVarSource: fieldRef=ObjectFieldSelector* resourceFieldRef=ResourceFieldSelector*
    configMapKeyRef=ConfigMapKeySelector* secretKeyRef=SecretKeySelector*
    fileKeyRef=FileKeySelector*
EphemeralContainer: name=s! ports=[ContainerPort envFrom=[EnvFromSource env=[EnvVar
    resources=ResourceRequirements resizePolicy=[ContainerResizePolicy restartPolicy=s*
    restartPolicyRules=[ContainerRestartRule volumeMounts=[VolumeMount volumeDevices=[VolumeDevice
    livenessProbe=Probe* readinessProbe=Probe* startupProbe=Probe* lifecycle=Lifecycle*
    securityContext=SecurityContext*
EphemeralVolumeSource: volumeClaimTemplate=PersistentVolumeClaimTemplate*
FCVolumeSource: lun=i*
FileKeySelector: volumeName=s! path=s! key=s! optional=b*
FlexVolumeSource: driver=s! secretRef=LocalObjectReference*
GCEPersistentDiskVolumeSource: pdName=s!
GRPCAction: port=i! service=s*!
GitRepoVolumeSource: repository=s!
GlusterfsVolumeSource: endpoints=s! path=s!
HTTPGetAction: port=I! httpHeaders=[HTTPHeader
HTTPHeader: name=s! value=s!
HostAlias: ip=s!
HostPathVolumeSource: path=s! type=s*
ISCSIVolumeSource: targetPortal=s! iqn=s! lun=i! secretRef=LocalObjectReference* initiatorName=s*
KeyToPath: key=s! path=s! mode=i*
LabelSelector: matchExpressions=[LabelSelectorRequirement
LabelSelectorRequirement: key=s! operator=s!
LeaderWorkerTemplate: leaderTemplate=PodTemplateSpec* workerTemplate=PodTemplateSpec! size=i*
    subGroupPolicy=SubGroupPolicy* volumeClaimTemplates=[PersistentVolumeClaim
    persistentVolumeClaimRetentionPolicy=StatefulSetPersistentVolumeClaimRetentionPolicy*
Lifecycle: postStart=LifecycleHandler* preStop=LifecycleHandler* stopSignal=s*
LifecycleHandler: exec=ExecAction* httpGet=HTTPGetAction* tcpSocket=TCPSocketAction*
    sleep=SleepAction*
ManagedFieldsEntry: time=T* fieldsV1=FieldsV1*
ModifyVolumeStatus: status=s!
NFSVolumeSource: server=s! path=s!
NetworkConfig: subdomainPolicy=s*!
NodeAffinity: requiredDuringSchedulingIgnoredDuringExecution=NodeSelector*
    preferredDuringSchedulingIgnoredDuringExecution=[PreferredSchedulingTerm
NodeSelector: nodeSelectorTerms=[NodeSelectorTerm!
NodeSelectorRequirement: key=s! operator=s!
NodeSelectorTerm: matchExpressions=[NodeSelectorRequirement matchFields=[NodeSelectorRequirement
ObjectFieldSelector: fieldPath=s!
ObjectMeta: creationTimestamp=T~ deletionTimestamp=T* deletionGracePeriodSeconds=i*
    ownerReferences=[OwnerReference managedFields=[ManagedFieldsEntry
OwnerReference: apiVersion=s! kind=s! name=s! uid=s! controller=b* blockOwnerDeletion=b*
PersistentVolumeClaim: metadata=ObjectMeta spec=PersistentVolumeClaimSpec
    status=PersistentVolumeClaimStatus
PersistentVolumeClaimCondition: type=s! status=s! lastProbeTime=T lastTransitionTime=T
PersistentVolumeClaimSpec: selector=LabelSelector* resources=VolumeResourceRequirements
    storageClassName=s* volumeMode=s* dataSource=TypedLocalObjectReference*
    dataSourceRef=TypedObjectReference* volumeAttributesClassName=s*
PersistentVolumeClaimStatus: capacity={Q conditions=[PersistentVolumeClaimCondition
    allocatedResources={Q currentVolumeAttributesClassName=s* modifyVolumeStatus=ModifyVolumeStatus*
PersistentVolumeClaimTemplate: metadata=ObjectMeta spec=PersistentVolumeClaimSpec!
PersistentVolumeClaimVolumeSource: claimName=s!
PhotonPersistentDiskVolumeSource: pdID=s!
PodAffinity: requiredDuringSchedulingIgnoredDuringExecution=[PodAffinityTerm
    preferredDuringSchedulingIgnoredDuringExecution=[WeightedPodAffinityTerm
PodAffinityTerm: labelSelector=LabelSelector* topologyKey=s! namespaceSelector=LabelSelector*
PodAntiAffinity: requiredDuringSchedulingIgnoredDuringExecution=[PodAffinityTerm
    preferredDuringSchedulingIgnoredDuringExecution=[WeightedPodAffinityTerm
PodCertificateProjection: maxExpirationSeconds=i*
PodDNSConfig: options=[PodDNSConfigOption
PodDNSConfigOption: value=s*
PodOS: name=s!
PodReadinessGate: conditionType=s!
PodResourceClaim: name=s! resourceClaimName=s* resourceClaimTemplateName=s*
PodSchedulingGate: name=s!
PodSchedulingGroup: podGroupName=s*
PodSecurityContext: seLinuxOptions=SELinuxOptions* windowsOptions=WindowsSecurityContextOptions*
    runAsUser=i* runAsGroup=i* runAsNonRoot=b* supplementalGroups=[i supplementalGroupsPolicy=s*
    fsGroup=i* sysctls=[Sysctl fsGroupChangePolicy=s* seccompProfile=SeccompProfile*
    appArmorProfile=AppArmorProfile* seLinuxChangePolicy=s*
PodSpec: volumes=[Volume initContainers=[Container containers=[Container!
    ephemeralContainers=[EphemeralContainer terminationGracePeriodSeconds=i*
    activeDeadlineSeconds=i* automountServiceAccountToken=b* shareProcessNamespace=b*
    securityContext=PodSecurityContext* imagePullSecrets=[LocalObjectReference affinity=Affinity*
    tolerations=[Toleration hostAliases=[HostAlias priority=i* dnsConfig=PodDNSConfig*
    readinessGates=[PodReadinessGate runtimeClassName=s* enableServiceLinks=b* preemptionPolicy=s*
    overhead={Q topologySpreadConstraints=[TopologySpreadConstraint setHostnameAsFQDN=b* os=PodOS*
    hostUsers=b* schedulingGates=[PodSchedulingGate resourceClaims=[PodResourceClaim
    resources=ResourceRequirements* hostnameOverride=s* schedulingGroup=PodSchedulingGroup*
PodTemplateSpec: metadata=ObjectMeta spec=PodSpec
PortworxVolumeSource: volumeID=s!
PreferredSchedulingTerm: weight=i! preference=NodeSelectorTerm!
Probe: exec=ExecAction* httpGet=HTTPGetAction* tcpSocket=TCPSocketAction* grpc=GRPCAction*
    terminationGracePeriodSeconds=i*
ProjectedVolumeSource: sources=[VolumeProjection! defaultMode=i*
QuobyteVolumeSource: registry=s! volume=s!
RBDVolumeSource: monitors=[s! image=s! secretRef=LocalObjectReference*
ResourceClaim: name=s!
ResourceFieldSelector: resource=s! divisor=Q
ResourceRequirements: limits={Q requests={Q claims=[ResourceClaim
ScaleIOVolumeSource: gateway=s! system=s! secretRef=LocalObjectReference*!
SeccompProfile: type=s! localhostProfile=s*
SecretEnvSource: optional=b*
SecretKeySelector: key=s! optional=b*
SecretProjection: items=[KeyToPath optional=b*
SecretVolumeSource: items=[KeyToPath defaultMode=i* optional=b*
SecurityContext: capabilities=Capabilities* privileged=b* seLinuxOptions=SELinuxOptions*
    windowsOptions=WindowsSecurityContextOptions* runAsUser=i* runAsGroup=i* runAsNonRoot=b*
    readOnlyRootFilesystem=b* allowPrivilegeEscalation=b* procMount=s*
    seccompProfile=SeccompProfile* appArmorProfile=AppArmorProfile*
ServiceAccountTokenProjection: expirationSeconds=i* path=s!
SleepAction: seconds=i!
StorageOSVolumeSource: secretRef=LocalObjectReference*
SubGroupPolicy: subGroupPolicyType=s* subGroupSize=i*
Sysctl: name=s! value=s!
TCPSocketAction: port=I!
Toleration: tolerationSeconds=i*
TopologySpreadConstraint: maxSkew=i! topologyKey=s! whenUnsatisfiable=s!
    labelSelector=LabelSelector* minDomains=i* nodeAffinityPolicy=s* nodeTaintsPolicy=s*
TypedLocalObjectReference: apiGroup=s*! kind=s! name=s!
TypedObjectReference: apiGroup=s*! kind=s! name=s! namespace=s*
Volume: name=s! hostPath=HostPathVolumeSource* emptyDir=EmptyDirVolumeSource*
    gcePersistentDisk=GCEPersistentDiskVolumeSource*
    awsElasticBlockStore=AWSElasticBlockStoreVolumeSource* gitRepo=GitRepoVolumeSource*
    secret=SecretVolumeSource* nfs=NFSVolumeSource* iscsi=ISCSIVolumeSource*
    glusterfs=GlusterfsVolumeSource* persistentVolumeClaim=PersistentVolumeClaimVolumeSource*
    rbd=RBDVolumeSource* flexVolume=FlexVolumeSource* cinder=CinderVolumeSource*
    cephfs=CephFSVolumeSource* flocker=FlockerVolumeSource* downwardAPI=DownwardAPIVolumeSource*
    fc=FCVolumeSource* azureFile=AzureFileVolumeSource* configMap=ConfigMapVolumeSource*
    vsphereVolume=VsphereVirtualDiskVolumeSource* quobyte=QuobyteVolumeSource*
    azureDisk=AzureDiskVolumeSource* photonPersistentDisk=PhotonPersistentDiskVolumeSource*
    projected=ProjectedVolumeSource* portworxVolume=PortworxVolumeSource*
    scaleIO=ScaleIOVolumeSource* storageos=StorageOSVolumeSource* csi=CSIVolumeSource*
    ephemeral=EphemeralVolumeSource* image=ImageVolumeSource*
VolumeDevice: name=s! devicePath=s!
VolumeMount: name=s! recursiveReadOnly=s* mountPath=s! mountPropagation=s*
VolumeProjection: secret=SecretProjection* downwardAPI=DownwardAPIProjection*
    configMap=ConfigMapProjection* serviceAccountToken=ServiceAccountTokenProjection*
    clusterTrustBundle=ClusterTrustBundleProjection* podCertificate=PodCertificateProjection*
VolumeResourceRequirements: limits={Q requests={Q
VsphereVirtualDiskVolumeSource: volumePath=s!
WeightedPodAffinityTerm: weight=i! podAffinityTerm=PodAffinityTerm!
WindowsSecurityContextOptions: gmsaCredentialSpecName=s* gmsaCredentialSpec=s* runAsUserName=s*
    hostProcess=b*
"""

_OMIT = object()
_DEC_SUFFIXES = {-9: "n", -6: "u", -3: "m", 0: "", 3: "k", 6: "M", 9: "G", 12: "T", 15: "P", 18: "E"}
_BIN_SUFFIXES = {"Ki": 10, "Mi": 20, "Gi": 30, "Ti": 40, "Pi": 50, "Ei": 60}
_NANO = Fraction(1, 10**9)


@dataclass(frozen=True)
class _GoField:
    kind: str
    pointer: bool
    omitempty: bool
    omitzero: bool


@cache
def go_types() -> dict[str, dict[str, _GoField]]:
    """GO_TYPES parsed: type name -> JSON field name -> how Go encodes it."""
    out: dict[str, dict[str, _GoField]] = {}
    last = ""
    for line in GO_TYPES.splitlines():
        if not line.strip():
            continue
        if not line.startswith(" "):
            last, _, line = line.partition(": ")
            out[last] = {}
        for item in line.split():
            name, _, spec = item.partition("=")
            kind = spec.rstrip("*!~")
            flags = spec[len(kind) :]
            out[last][name] = _GoField(kind, "*" in flags, "!" not in flags, "~" in flags)
    return out


_QUANTITY = re.compile(r"([+-]?)(\d*)(?:\.(\d*))?([eEinumkKMGTP][-+]?\d*|[eEinumkKMGTP]*)")
_DEC_EXPONENTS = {v: k for k, v in _DEC_SUFFIXES.items()}
_BIN_NAMES = {v: k for k, v in _BIN_SUFFIXES.items()}
_INT64 = 2**63


def go_quantity(value: Any) -> str:
    """A resource.Quantity as Go decodes and writes it back (k8s.io/apimachinery resource): the input
    itself when ParseQuantity keeps it (a short value already in its canonical shape), else the value,
    rounded up to nano, in canonical form (decimal suffixes in steps of 1000, or a binary suffix for
    an integer at least 1024 written with one)."""
    text = repr(value) if isinstance(value, float) else str(value).strip()
    m = _QUANTITY.fullmatch(text)
    if m is None or not text:
        raise ValueError(f"not a quantity: {value!r}")
    sign, digits, denom, suffix = m.group(1), m.group(2), m.group(3) or "", m.group(4)
    num = digits.lstrip("0") or "0"
    if suffix in _BIN_SUFFIXES:
        base, exponent, form = 2, _BIN_SUFFIXES[suffix], "binary"
    elif suffix in _DEC_EXPONENTS:
        base, exponent, form = 10, _DEC_EXPONENTS[suffix], "decimal"
    elif len(suffix) > 1 and suffix[0] in "eE" and re.fullmatch(r"[-+]?\d+", suffix[1:]):
        base, exponent, form = 10, int(suffix[1:]), "exponent"
    else:
        raise ValueError(f"unknown quantity suffix: {value!r}")
    if abs(exponent) > 64:
        raise ValueError(f"quantity out of range: {value!r}")
    if text == "0":
        return text
    # ParseQuantity's int64 fast path keeps the input string when it is already canonical-looking
    if form == "binary" and not denom:
        precision = 15 - len(num) - int(exponent * 3 / 10) - 1
        if precision >= 0 and int(num) << exponent < _INT64 and int(num) & 7:
            return text
    elif form != "binary":
        shifted, scale = num + denom, exponent - len(denom)
        fast = len(shifted) <= 18 and scale >= -9
        if fast and scale % 3 == 0 and not shifted.endswith("000") and shifted[0] != "0":
            return text
    amount = (int(num) + (Fraction(int(denom), 10 ** len(denom)) if denom else 0)) * Fraction(
        base
    ) ** exponent
    amount = math.ceil(amount / _NANO) * _NANO  # rounded up, away from zero
    amount = -amount if sign == "-" else amount
    if amount == 0:
        return "0"
    if form == "binary" and abs(amount) >= 1024 and amount.denominator == 1:
        mantissa, power = amount.numerator, 0
        while mantissa % 1024 == 0:
            mantissa, power = mantissa // 1024, power + 10
        return f"{mantissa}{_BIN_NAMES.get(power, '')}"
    mantissa, exp10 = int(amount / _NANO), -9
    while mantissa % 10 == 0:
        mantissa, exp10 = mantissa // 10, exp10 + 1
    while exp10 % 3:
        mantissa, exp10 = mantissa * 10, exp10 - 1
    if form == "exponent":
        return f"{mantissa}e{exp10}" if exp10 else str(mantissa)
    return f"{mantissa}{_DEC_SUFFIXES.get(exp10, '')}"  # beyond E, Go writes no suffix at all


def _zero(value: Any) -> bool:
    return value is None or value is False or value == 0 or value == "" or value == [] or value == {}


def _go_value(value: Any, kind: str) -> Any:
    """A non-null value of `kind` as Go writes it back."""
    if kind == "Q":
        try:
            return go_quantity(value)
        except ValueError:  # the CRD's pattern keeps these out; written as given rather than failing
            return value
    if kind.startswith("["):
        return [_go_value(v, kind[1:]) if v is not None else _go_absent(kind[1:]) for v in value]
    if kind.startswith("{"):
        return {
            k: _go_value(v, kind[1:]) if v is not None else _go_absent(kind[1:]) for k, v in value.items()
        }
    if kind in go_types() and isinstance(value, dict):
        return go_struct(value, kind)
    return value


def _go_absent(kind: str) -> Any:
    """What Go writes for a non-pointer field of `kind` that was absent or null (its zero value)."""
    zeros: dict[str, Any] = {"s": "", "b": False, "i": 0, "I": 0, "Q": "0", "T": None}
    if kind in zeros:
        return zeros[kind]
    if kind.startswith(("[", "{")):
        return None
    return go_struct({}, kind)


#: defaults upstream's CRD sets (controller-gen copies the `+default` markers of k8s.io/api) that this
#: operator's CRD does not, and that change what Go writes: a pointer set to its zero value is kept. (The
#: other differences are "" defaults of omitempty strings, which Go drops anyway, and the deprecated
#: in-tree azureDisk volume, whose defaults differ both ways: its revisions hash differently.)
UPSTREAM_CRD_DEFAULTS: dict[str, dict[str, Any]] = {
    "GRPCAction": {"service": ""},
    "FileKeySelector": {"optional": False},
}


def go_struct(obj: dict[str, Any], type_name: str) -> dict[str, Any]:
    """`obj` decoded into Go type `type_name` and encoded again (encoding/json), after the defaults only
    upstream's CRD sets. A field that no Go type of the table lists (a field the CRD kept, like
    topologyPlacementPolicy) is kept like a plain one."""
    fields = go_types().get(type_name, {})
    defaults = UPSTREAM_CRD_DEFAULTS.get(type_name)
    if defaults:
        obj = {**defaults, **{k: v for k, v in obj.items() if v is not None}}
    out: dict[str, Any] = {}
    for name, value in obj.items():
        if name not in fields and not _zero(value):
            out[name] = value
    for name, f in fields.items():
        value = obj.get(name)
        if value is None:  # absent, or null: Go keeps the zero value
            if f.pointer or f.kind.startswith(("[", "{")):
                written = _OMIT if f.omitempty else None
            elif f.omitzero or (f.omitempty and f.kind in ("s", "b", "i")):
                written = _OMIT
            else:
                written = _go_absent(f.kind)
        elif (
            f.omitempty
            and not f.pointer
            and (f.kind in ("s", "b", "i") or f.kind[0] in "[{")
            and _zero(value)
        ):
            written = _OMIT  # an empty slice or map, a zero scalar
        else:
            written = _go_value(value, f.kind)
        if written is not _OMIT:
            out[name] = written
    return out


_HTML_ESCAPES = str.maketrans(
    {"<": "\\u003c", ">": "\\u003e", "&": "\\u0026", "\u2028": "\\u2028", "\u2029": "\\u2029"}
)


def _go_string(s: str) -> str:
    """A JSON string as Go's encoding/json writes it: as Python's (short escapes for \\b \\f \\n \\r \\t,
    \\u00xx for other control characters, the rest raw), plus HTML characters and U+2028/U+2029
    escaped."""
    return json.dumps(s, ensure_ascii=False).translate(_HTML_ESCAPES)


def _go_number(n: int | float) -> str:
    """A number as Go re-marshals it from an interface{} (a float64)."""
    f = float(n)
    if f.is_integer() and abs(f) < 1e21:
        return format(Decimal(repr(f)), "f").removesuffix(".0")
    text = repr(f).replace("e+0", "e+").replace("e-0", "e-")
    return text[:-2] if text.endswith(".0") else text


def go_json(value: Any) -> str:
    """`value` (plain JSON data) as Go's json.Marshal of a map[string]interface{} writes it: keys
    sorted, no spaces."""
    if value is None:
        return "null"
    if value is True:
        return "true"
    if value is False:
        return "false"
    if isinstance(value, int | float):
        return _go_number(value)
    if isinstance(value, str):
        return _go_string(value)
    if isinstance(value, list):
        return "[" + ",".join(go_json(v) for v in value) + "]"
    if isinstance(value, dict):
        items = sorted(value.items())
        return "{" + ",".join(f"{_go_string(k)}:{go_json(v)}" for k, v in items) + "}"
    raise TypeError(f"not JSON data: {value!r}")
