//! `VirtualGateway` → Istio `Gateway`; `GatewayRoute` → VirtualServices bound to it, with App
//! Mesh's implicit rewrites made explicit and the target's router routes flattened in.

use crate::findings::Code;

use super::Ctx;
use super::coverage::{Disposition, Field, field, mesh_ref, selector};
use super::node::{access_log, client_tls, connection_pool, health_check};
use super::router::{header_fields, http_match_fields};

/// Gateway listener TLS fields.
fn gateway_tls(prefix: &str) -> Vec<Field> {
    vec![
        field(
            format!("{prefix}.mode"),
            Disposition::Exact,
            "STRICT: server `tls.mode: SIMPLE` (MUTUAL with validation); DISABLED: plain; PERMISSIVE: unsupported (MP402)",
        ),
        field(
            format!("{prefix}.certificate.acm.certificateARN"),
            Disposition::Unsupported(Code::GatewayAcm),
            "none: terminate TLS on the AWS load balancer",
        ),
        field(
            format!("{prefix}.certificate.file.certificateChain"),
            Disposition::Exact,
            "server `tls.serverCertificate`",
        ),
        field(
            format!("{prefix}.certificate.file.privateKey"),
            Disposition::Exact,
            "server `tls.privateKey`",
        ),
        field(
            format!("{prefix}.certificate.sds.secretName"),
            Disposition::Approx(Code::CustomCertificate),
            "server `tls.credentialName` (a Kubernetes Secret of that name)",
        ),
        field(
            format!("{prefix}.validation.subjectAlternativeNames.match.exact[]"),
            Disposition::Exact,
            "server `tls.subjectAltNames`",
        ),
        field(
            format!("{prefix}.validation.trust.acm.certificateAuthorityARNs[]"),
            Disposition::Unsupported(Code::GatewayAcm),
            "none: export the CA to a Secret",
        ),
        field(
            format!("{prefix}.validation.trust.file.certificateChain"),
            Disposition::Exact,
            "server `tls.mode: MUTUAL` + `tls.caCertificates`",
        ),
        field(
            format!("{prefix}.validation.trust.sds.secretName"),
            Disposition::Approx(Code::CustomCertificate),
            "server `tls.mode: MUTUAL` + `tls.credentialName`",
        ),
    ]
}

pub(super) fn gateway_coverage() -> Vec<Field> {
    let mut fields = vec![
        field("spec.awsName", Disposition::Drop, "none"),
        field(
            "spec.listeners[].portMapping.port",
            Disposition::Exact,
            "Gateway `servers[].port.number`",
        ),
        field(
            "spec.listeners[].portMapping.protocol",
            Disposition::Exact,
            "Gateway `servers[].port.protocol` (upper case; HTTPS when TLS terminates)",
        ),
    ];
    fields.extend(selector(
        "spec.podSelector",
        Disposition::Approx(Code::GatewayDeployment),
        "Gateway `selector` (the Istio gateway pods must carry these labels)",
    ));
    fields.extend(selector(
        "spec.namespaceSelector",
        Disposition::Approx(Code::RouteSelection),
        "which gateway routes bind (evaluated at translation time)",
    ));
    fields.extend(selector(
        "spec.gatewayRouteSelector",
        Disposition::Approx(Code::RouteSelection),
        "which gateway routes bind (evaluated at translation time)",
    ));
    fields.extend(health_check(
        "spec.listeners[].healthCheck",
        Code::GatewayHealthCheck,
        "none: Istio gateways report readiness on port 15021",
    ));
    fields.extend(connection_pool(
        "spec.listeners[].connectionPool",
        Code::GatewayConnectionPool,
        "DestinationRule connection pool for the gateway's upstream hosts",
        false,
    ));
    fields.extend(gateway_tls("spec.listeners[].tls"));
    fields.extend(client_tls("spec.backendDefaults.clientPolicy.tls"));
    fields.extend(access_log("spec.logging.accessLog.file"));
    fields.extend(mesh_ref());
    fields
}

pub(super) fn route_coverage() -> Vec<Field> {
    let mut fields = vec![
        field("spec.awsName", Disposition::Drop, "none"),
        field(
            "spec.priority",
            Disposition::Approx(Code::GatewayPriority),
            "position in the merged `http[]` of the host's VirtualService",
        ),
        field(
            "spec.virtualGatewayRef.name",
            Disposition::Exact,
            "VirtualService `gateways`",
        ),
        field(
            "spec.virtualGatewayRef.namespace",
            Disposition::Exact,
            "VirtualService `gateways`",
        ),
        field("spec.virtualGatewayRef.uid", Disposition::Drop, "none"),
    ];
    for kind in ["httpRoute", "http2Route", "grpcRoute"] {
        let p = format!("spec.{kind}");
        fields.push(field(
            format!("{p}.match.hostname.exact"),
            Disposition::Exact,
            "VirtualService `hosts`",
        ));
        fields.push(field(
            format!("{p}.match.hostname.suffix"),
            Disposition::Approx(Code::HostnameSuffix),
            "`hosts: [*<suffix>]`, or `*` with an authority regex",
        ));
        fields.push(field(
            format!("{p}.match.port"),
            Disposition::Approx(Code::PortMatch),
            "`match[].port`",
        ));
        if kind == "grpcRoute" {
            fields.push(field(
                format!("{p}.match.serviceName"),
                Disposition::Exact,
                "`match[].uri.prefix` `/<service>/`",
            ));
            fields.extend(header_fields(&format!("{p}.match.metadata")));
        } else {
            fields.extend(http_match_fields(&format!("{p}.match")));
            fields.push(field(
                format!("{p}.action.rewrite.path.exact"),
                Disposition::Exact,
                "`rewrite.uriRegexRewrite` (whole path)",
            ));
            fields.push(field(
                format!("{p}.action.rewrite.prefix.defaultPrefix"),
                Disposition::Exact,
                "ENABLED (default): `rewrite.uri: /` written explicitly; DISABLED: no rewrite",
            ));
            fields.push(field(
                format!("{p}.action.rewrite.prefix.value"),
                Disposition::Exact,
                "`rewrite.uri`",
            ));
        }
        fields.push(field(
            format!("{p}.action.rewrite.hostname.defaultTargetHostname"),
            Disposition::Exact,
            "ENABLED (default): `rewrite.authority: <target host>`; DISABLED: none",
        ));
        fields.push(field(
            format!("{p}.action.target.port"),
            Disposition::Approx(Code::TargetPort),
            "`route[].destination.port.number`",
        ));
        fields.push(field(
            format!("{p}.action.target.virtualService.virtualServiceRef.name"),
            Disposition::Approx(Code::TwoStageRouting),
            "`route[]` to the target host, flattened with the target's router routes",
        ));
        fields.push(field(
            format!("{p}.action.target.virtualService.virtualServiceRef.namespace"),
            Disposition::Approx(Code::TwoStageRouting),
            "`route[]` to the target host, flattened with the target's router routes",
        ));
        fields.push(field(
            format!("{p}.action.target.virtualService.virtualServiceARN"),
            Disposition::Approx(Code::ArnResolved),
            "the virtual service of that name in the source",
        ));
    }
    fields.extend(mesh_ref());
    fields
}

pub(super) fn translate(ctx: &mut Ctx<'_>) {
    for gateway in &ctx.inv.virtual_gateways {
        ctx.admit("VirtualGateway", gateway);
    }
    for route in &ctx.inv.gateway_routes {
        ctx.admit("GatewayRoute", route);
    }
}
