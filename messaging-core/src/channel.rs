//! Which channel a provider serves, as the ingress route and the operator
//! name it, and how that channel signs its webhooks.

/// A messaging channel greentic has a provider pack for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ChannelKind {
    /// Telegram Bot API webhooks.
    Telegram,
    /// Slack Events API.
    Slack,
    /// WhatsApp Cloud API (Meta webhooks).
    WhatsApp,
    /// Microsoft Teams (Bot Framework).
    Teams,
    /// Webex webhooks.
    Webex,
    /// WebChat (Direct Line).
    WebChat,
    /// Email.
    Email,
}

impl ChannelKind {
    /// Every channel, in the order help texts list them.
    pub const ALL: [ChannelKind; 7] = [
        ChannelKind::Telegram,
        ChannelKind::Slack,
        ChannelKind::WhatsApp,
        ChannelKind::Teams,
        ChannelKind::Webex,
        ChannelKind::WebChat,
        ChannelKind::Email,
    ];

    /// Its name in routes and flags (`telegram`); greentic's pack name
    /// (`messaging-telegram`) is accepted too.
    pub fn name(self) -> &'static str {
        match self {
            ChannelKind::Telegram => "telegram",
            ChannelKind::Slack => "slack",
            ChannelKind::WhatsApp => "whatsapp",
            ChannelKind::Teams => "teams",
            ChannelKind::Webex => "webex",
            ChannelKind::WebChat => "webchat",
            ChannelKind::Email => "email",
        }
    }

    /// The kind a route segment or flag names.
    pub fn parse(name: &str) -> Option<ChannelKind> {
        let name = name.strip_prefix("messaging-").unwrap_or(name);
        ChannelKind::ALL.into_iter().find(|k| k.name() == name)
    }

    /// The channel of a messaging `provider_type` (`messaging.telegram.bot`
    /// → Telegram); `None` for another domain or an unknown channel.
    pub fn of_provider_type(provider_type: &str) -> Option<ChannelKind> {
        let mut parts = provider_type.split('.');
        (parts.next() == Some("messaging"))
            .then(|| parts.next())
            .flatten()
            .and_then(ChannelKind::parse)
    }

    /// greentic's `provider_type` for it (`send_payload`'s input), as
    /// greentic-messaging-providers names them.
    pub fn provider_type(self) -> &'static str {
        match self {
            ChannelKind::Telegram => "messaging.telegram.bot",
            ChannelKind::Slack => "messaging.slack.api",
            ChannelKind::WhatsApp => "messaging.whatsapp.cloud",
            ChannelKind::Teams => "messaging.teams.graph",
            ChannelKind::Webex => "messaging.webex.bot",
            ChannelKind::WebChat => "messaging.webchat",
            ChannelKind::Email => "messaging.email.smtp",
        }
    }
}
